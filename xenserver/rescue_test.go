package xenserver

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/statemachine"
	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

const rescueImageID = "3f1c0b2e-9d8a-4c7b-a6e5-d4c3b2a1f0e9"

// rescueState is a guest on compute1 and a rescue image in its pool.
type rescueState struct {
	e     *testEnv
	g     *guest
	image []byte // the rescue image's content
	vdi   string // the image VDI's ref
}

func newRescueState(t *testing.T, l layout, running bool) *rescueState {
	t.Helper()
	e := newEnv(t, l, envOptions{})
	s := &rescueState{e: e}
	s.g = e.addGuest("compute1", guestSpec{running: running, disks: []int64{8 << 20, 4 << 20}})
	s.g.inst.Hostname = "web1"
	s.vdi, s.image = addImage(t, e, "compute1", rescueImageID, 4<<20)
	return s
}

// addImage puts a VDI tagged image-id on a compute host's SR, holding a
// pattern, as Nova's image cache keeps images.
func addImage(t testing.TB, e *testEnv, host, imageID string, size int64) (string, []byte) {
	t.Helper()
	ctx := context.Background()
	tg, err := e.d.pool(ctx, host)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := tg.Client.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "image " + imageID, SR: tg.SR, VirtualSize: size,
		Type: "user", OtherConfig: map[string]string{KeyImageID: imageID}})
	if err != nil {
		t.Fatal(err)
	}
	data := pattern("image "+imageID, int(size))
	if err := e.poolOf[host].WriteVDI(string(ref), 0, data); err != nil {
		t.Fatal(err)
	}
	return string(ref), data
}

func (s *rescueState) rescue(ctx context.Context) error {
	return s.e.d.Rescue(ctx, compute.RescueRequest{Instance: s.g.inst, Host: s.g.host, ImageRef: rescueImageID,
		AdminPassword: "s3cret-password"})
}

func (s *rescueState) unrescue(ctx context.Context) error {
	return s.e.d.Unrescue(ctx, compute.InstanceRequest{Instance: s.g.inst, Host: s.g.host})
}

// rescueView is what a check sees of the instance's VMs.
type rescueView struct {
	orig    vmEntry
	rescues []vmEntry
	locked  bool
}

func (s *rescueState) view(t *testing.T) rescueView {
	t.Helper()
	var v rescueView
	for name, vm := range s.e.vms(s.g.host) {
		switch {
		case name == s.g.inst.Name:
			v.orig = vm
		case strings.HasSuffix(name, rescueSuffix) || vm.Rec.OtherConfig[KeyRescueOf] != "":
			v.rescues = append(v.rescues, vm)
		}
	}
	if v.orig.Ref == "" {
		t.Fatal("the original VM is gone")
	}
	_, v.locked = v.orig.Rec.BlockedOperations[xenapi.VMOperationStart]
	return v
}

// checkRescued: one running rescue VM, named and tagged, with the image's
// clone at 0 and the original root at 1; the original halted and
// bootlocked, its disks intact.
func (s *rescueState) checkRescued(t *testing.T) {
	t.Helper()
	v := s.view(t)
	if len(v.rescues) != 1 {
		t.Fatalf("%d rescue VMs", len(v.rescues))
	}
	r := v.rescues[0]
	switch {
	case r.Rec.NameLabel != s.g.inst.Name+"-rescue", r.Rec.OtherConfig[KeyRescueOf] != s.g.inst.UUID:
		t.Fatalf("rescue VM %q %v", r.Rec.NameLabel, r.Rec.OtherConfig)
	case r.Rec.PowerState != xenapi.VMPowerStateRunning:
		t.Fatalf("rescue VM is %s", r.Rec.PowerState)
	case r.Rec.XenstoreData[xenstoreHostname] != "RESCUE-web1":
		t.Fatalf("rescue hostname %q", r.Rec.XenstoreData[xenstoreHostname])
	case r.Rec.OtherConfig[KeyNovaUUID] != "":
		t.Fatal("the rescue VM claims the instance")
	case v.orig.Rec.PowerState != xenapi.VMPowerStateHalted || !v.locked:
		t.Fatalf("original is %s, bootlocked %v", v.orig.Rec.PowerState, v.locked)
	}
	tg, err := s.e.d.pool(context.Background(), s.g.host)
	if err != nil {
		t.Fatal(err)
	}
	disks, err := vmDisks(context.Background(), tg.Client, r)
	if err != nil {
		t.Fatal(err)
	}
	if len(disks) != 2 || disks[0].VBDRec.Userdevice != "0" || !disks[0].VBDRec.Bootable ||
		disks[1].VBDRec.Userdevice != "1" || string(disks[1].VDI) != s.g.vm.VDIs[0] || string(disks[0].VDI) == s.vdi {
		t.Fatalf("rescue VM disks %+v", disks)
	}
	s.e.checkDisk(s.g.host, disks[0].VDIRec.UUID, s.image)
	s.checkVDICount(t, 1)
	checkSourceData(t, s.e, s.g)
	s.checkImage(t)
}

// checkOriginal: no rescue VM and no rescue disk, the original unlocked,
// running when running, its disks intact.
func (s *rescueState) checkOriginal(t *testing.T, running bool) {
	t.Helper()
	v := s.view(t)
	if len(v.rescues) != 0 || v.locked {
		t.Fatalf("%d rescue VMs, bootlocked %v", len(v.rescues), v.locked)
	}
	if running != (v.orig.Rec.PowerState == xenapi.VMPowerStateRunning) {
		t.Fatalf("original is %s", v.orig.Rec.PowerState)
	}
	tg, err := s.e.d.pool(context.Background(), s.g.host)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := rescueDisks(context.Background(), tg.Client, s.g.inst.UUID); len(left) != 0 {
		t.Fatalf("%d rescue disks left", len(left))
	}
	s.checkVDICount(t, 0)
	checkSourceData(t, s.e, s.g)
	s.checkImage(t)
}

// checkVDICount: the pool's managed VDIs are the guest's, the image and
// extra more.
func (s *rescueState) checkVDICount(t *testing.T, extra int) {
	t.Helper()
	tg, err := s.e.d.pool(context.Background(), s.g.host)
	if err != nil {
		t.Fatal(err)
	}
	recs, err := tg.Client.VDI.GetAllRecordsWhere(context.Background(), `field "managed"="true"`)
	if err != nil {
		t.Fatal(err)
	}
	if want := len(s.g.vm.VDIs) + 1 + extra; len(recs) != want {
		var names []string
		for _, r := range recs {
			names = append(names, r.NameLabel+fmt.Sprint(r.OtherConfig))
		}
		t.Fatalf("%d managed VDIs, want %d: %v", len(recs), want, names)
	}
}

func (s *rescueState) checkImage(t *testing.T) {
	t.Helper()
	got, err := s.e.poolOf[s.g.host].ReadVDI(s.vdi)
	if err != nil {
		t.Fatalf("the rescue image is gone: %v", err)
	}
	if !bytes.Equal(got[:len(s.image)], s.image) {
		t.Fatal("the rescue image changed")
	}
}

// checkSafe is the invariant after any failure: a working rescue (one
// running rescue VM, the original bootlocked) or the original not
// bootlocked, and never two rescue VMs nor a bootlocked original without
// a rescue VM.
func (s *rescueState) checkSafe(t *testing.T) {
	t.Helper()
	v := s.view(t)
	switch {
	case len(v.rescues) > 1:
		t.Fatalf("%d rescue VMs", len(v.rescues))
	case v.locked && len(v.rescues) == 0:
		t.Fatal("the original is bootlocked without a rescue VM")
	case v.locked && v.rescues[0].Rec.PowerState != xenapi.VMPowerStateRunning:
		t.Fatalf("the original is bootlocked and the rescue VM is %s", v.rescues[0].Rec.PowerState)
	}
	checkSourceData(t, s.e, s.g)
	s.checkImage(t)
}

func TestRescueUnrescue(t *testing.T) {
	for _, l := range layouts {
		for _, running := range []bool{true, false} {
			t.Run(fmt.Sprintf("%s/running=%v", l, running), func(t *testing.T) {
				ctx := context.Background()
				s := newRescueState(t, l, running)
				for i := 0; i < 2; i++ { // the second call finds the job done
					if err := s.rescue(ctx); err != nil {
						t.Fatalf("Rescue #%d: %v", i+1, err)
					}
					s.checkRescued(t)
				}
				// A rescued instance's state is its rescue VM's, as Nova's
				// lookup(check_rescue=True) reports it.
				info, err := s.e.d.GetInfo(ctx, compute.InstanceRequest{Instance: s.g.inst, Host: s.g.host})
				if err != nil || info.PowerState != statemachine.PowerRunning {
					t.Fatalf("GetInfo of a rescued instance: %+v, %v", info, err)
				}
				for i := 0; i < 2; i++ {
					if err := s.unrescue(ctx); err != nil {
						t.Fatalf("Unrescue #%d: %v", i+1, err)
					}
					s.checkOriginal(t, true)
				}
			})
		}
	}
}

func TestRescueRefusals(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name  string
		setup func(t *testing.T, s *rescueState) compute.RescueRequest
		check func(t *testing.T, err error)
	}{
		{"someone else's -rescue VM", func(t *testing.T, s *rescueState) compute.RescueRequest {
			if _, err := s.e.poolOf["compute1"].AddVM(xenapitest.VMSpec{Name: s.g.inst.Name + rescueSuffix,
				Host: s.e.hostOf["compute1"].Name(), Disks: []int64{1 << 20}}); err != nil {
				t.Fatal(err)
			}
			return compute.RescueRequest{Instance: s.g.inst, Host: "compute1", ImageRef: rescueImageID}
		}, func(t *testing.T, err error) {
			var re *RescueExistsError
			if !errors.As(err, &re) || !strings.Contains(err.Error(), "-rescue") {
				t.Fatalf("got %v", err)
			}
		}},
		{"unknown image", func(t *testing.T, s *rescueState) compute.RescueRequest {
			return compute.RescueRequest{Instance: s.g.inst, Host: "compute1", ImageRef: "no-such-image"}
		}, func(t *testing.T, err error) {
			var ie *ImageNotFoundError
			if !errors.As(err, &ie) || !errors.Is(err, compute.ErrNotFound) || ie.ImageRef != "no-such-image" {
				t.Fatalf("got %v", err)
			}
		}},
		{"no image", func(t *testing.T, s *rescueState) compute.RescueRequest {
			return compute.RescueRequest{Instance: s.g.inst, Host: "compute1"}
		}, func(t *testing.T, err error) {
			if !errors.As(err, new(*RequestError)) {
				t.Fatalf("got %v", err)
			}
		}},
		{"unknown instance", func(t *testing.T, s *rescueState) compute.RescueRequest {
			return compute.RescueRequest{Instance: &compute.Instance{UUID: "00000000-0000-4000-8000-000000000000"},
				Host: "compute1", ImageRef: rescueImageID}
		}, func(t *testing.T, err error) {
			if !errors.Is(err, compute.ErrNotFound) {
				t.Fatalf("got %v", err)
			}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newRescueState(t, standalone, true)
			tc.check(t, s.e.d.Rescue(ctx, tc.setup(t, s)))
			v := s.view(t)
			if v.locked || v.orig.Rec.PowerState != xenapi.VMPowerStateRunning {
				t.Fatalf("a refused rescue touched the original: %s, bootlocked %v", v.orig.Rec.PowerState, v.locked)
			}
			checkSourceData(t, s.e, s.g)
		})
	}
}

// TestUnrescueWithoutRescue: with no rescue VM, Unrescue only releases a
// bootlock and starts the original.
func TestUnrescueWithoutRescue(t *testing.T) {
	ctx := context.Background()
	s := newRescueState(t, standalone, false)
	tg, err := s.e.d.pool(ctx, "compute1")
	if err != nil {
		t.Fatal(err)
	}
	if err := bootlock(ctx, tg.Client, xenapi.VMRef(s.g.vm.Ref), true); err != nil {
		t.Fatal(err)
	}
	if err := s.unrescue(ctx); err != nil {
		t.Fatal(err)
	}
	s.checkOriginal(t, true)
}

// TestRescueKeepsOriginalRoot: an unrescue never destroys the original's
// root, even when the rescue VM's disk at 1 carries the rescue tag (Nova
// bug 1227898).
func TestRescueKeepsOriginalRoot(t *testing.T) {
	ctx := context.Background()
	s := newRescueState(t, standalone, true)
	if err := s.rescue(ctx); err != nil {
		t.Fatal(err)
	}
	tg, err := s.e.d.pool(ctx, "compute1")
	if err != nil {
		t.Fatal(err)
	}
	err = updateVDIOtherConfig(ctx, tg.Client, xenapi.VDIRef(s.g.vm.VDIs[0]), func(oc map[string]string) {
		oc[KeyRescueOf], oc[KeyRole] = s.g.inst.UUID, RoleRescue
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.unrescue(ctx); err != nil {
		t.Fatal(err)
	}
	checkSourceData(t, s.e, s.g)
}

// rescueStep is one method run of the sweeps.
type rescueStep struct {
	name  string
	setup func(t *testing.T) *rescueState
	run   func(s *rescueState, ctx context.Context) error
	done  func(s *rescueState, t *testing.T)
}

var rescueSteps = []rescueStep{
	{"Rescue", func(t *testing.T) *rescueState { return newRescueState(t, standalone, true) },
		(*rescueState).rescue, (*rescueState).checkRescued},
	{"Unrescue", func(t *testing.T) *rescueState {
		s := newRescueState(t, standalone, true)
		if err := s.rescue(context.Background()); err != nil {
			t.Fatal(err)
		}
		return s
	}, (*rescueState).unrescue, func(s *rescueState, t *testing.T) { s.checkOriginal(t, true) }},
}

// rescueCalls runs a step cleanly and returns the XenAPI calls it made,
// as method#n.
func rescueCalls(t *testing.T, st rescueStep) []xenapitest.CallRecord {
	t.Helper()
	s := st.setup(t)
	p := s.e.poolOf[s.g.host]
	before := len(p.Calls())
	if err := st.run(s, context.Background()); err != nil {
		t.Fatalf("clean run: %v", err)
	}
	st.done(s, t)
	var all []xenapitest.CallRecord
	for _, c := range p.Calls()[before:] {
		if !strings.HasPrefix(c.Method, "task.") && !strings.HasPrefix(c.Method, "event.") {
			all = append(all, c)
		}
	}
	if len(all) == 0 {
		t.Fatal("the clean run made no call")
	}
	var out []xenapitest.CallRecord
	for i := 0; i < len(all); i += rescueSweepStride {
		out = append(out, all[i])
	}
	return out
}

// sweepRescue runs check once per call each step makes in a clean run,
// each on a fresh state, in parallel.
func sweepRescue(t *testing.T, check func(t *testing.T, st rescueStep, s *rescueState, c xenapitest.CallRecord)) {
	if testing.Short() {
		t.Skip("one run per call")
	}
	for _, st := range rescueSteps {
		t.Run(st.name, func(t *testing.T) {
			for _, c := range rescueCalls(t, st) {
				t.Run(fmt.Sprintf("%s#%d", c.Method, c.N), func(t *testing.T) {
					t.Parallel()
					s := st.setup(t)
					check(t, st, s, c)
					if err := st.run(s, context.Background()); err != nil {
						t.Fatalf("called again: %v", err)
					}
					st.done(s, t)
				})
			}
		})
	}
}

// TestRescueFaultSweep fails every XenAPI call Rescue and Unrescue make,
// once each: after the failure the state is safe (checkSafe), a failed
// Rescue leaves the original as it was, and the call made again finishes
// the job.
func TestRescueFaultSweep(t *testing.T) {
	sweepRescue(t, func(t *testing.T, st rescueStep, s *rescueState, c xenapitest.CallRecord) {
		p := s.e.poolOf[s.g.host]
		p.FailNth(c.Method, c.N, xenapi.CodeInternalError, "injected")
		err := st.run(s, context.Background())
		p.ClearFaults()
		if err == nil {
			st.done(s, t)
			return
		}
		s.checkSafe(t)
		if st.name == "Rescue" {
			// Rolled back, or failed before touching anything.
			s.checkOriginal(t, true)
		}
	})
}

// TestRescueCancelSweep cancels Rescue and Unrescue at each call they
// make: the state is safe, and the call made again ends as one clean
// call does.
func TestRescueCancelSweep(t *testing.T) {
	sweepRescue(t, func(t *testing.T, st rescueStep, s *rescueState, c xenapitest.CallRecord) {
		p := s.e.poolOf[s.g.host]
		p.InjectFault(xenapitest.Fault{Method: c.Method, N: c.N, Delay: time.Hour})
		ctx, cancel := context.WithCancel(context.Background())
		errc := make(chan error, 1)
		go func() { errc <- st.run(s, ctx) }()
		cancelAtCall(p, c, errc, cancel)
		err := <-errc
		p.ClearFaults()
		if err == nil {
			st.done(s, t)
		}
		s.checkSafe(t)
	})
}

// cancelAtCall cancels once the pool received the call (or the run
// ended).
func cancelAtCall(p *xenapitest.Pool, c xenapitest.CallRecord, errc chan error, cancel func()) {
	defer cancel()
	deadline := time.Now().Add(10 * time.Second)
	for p.CallCount(c.Method) < c.N && time.Now().Before(deadline) {
		select {
		case err := <-errc:
			errc <- err
			return
		case <-time.After(time.Millisecond):
		}
	}
	time.Sleep(2 * time.Millisecond)
}

// TestRescueRollback: a rescue that fails once the original is down puts
// it back running and says so with *compute.InstanceFaultRollback.
func TestRescueRollback(t *testing.T) {
	for _, method := range []string{"VM.start_on", "VBD.create", "VM.set_blocked_operations"} {
		t.Run(method, func(t *testing.T) {
			s := newRescueState(t, standalone, true)
			p := s.e.poolOf[s.g.host]
			p.FailNth(method, p.CallCount(method)+1, xenapi.CodeInternalError, "injected")
			err := s.rescue(context.Background())
			var rb *compute.InstanceFaultRollback
			if !errors.As(err, &rb) || !xenapi.IsCode(err, xenapi.CodeInternalError) {
				t.Fatalf("got %v", err)
			}
			s.checkOriginal(t, true)
		})
	}
}

// TestRescueImageFromAnotherPool: the rescue image is only in another
// pool; Rescue imports it into the host's SR and boots from it.
func TestRescueImageFromAnotherPool(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, standalone, envOptions{})
	g := e.addGuest("compute1", guestSpec{running: true})
	_, image := addImage(t, e, "compute2", rescueImageID, 4<<20)
	if err := e.d.Rescue(ctx, compute.RescueRequest{Instance: g.inst, Host: "compute1", ImageRef: rescueImageID}); err != nil {
		t.Fatal(err)
	}
	tg, err := e.d.pool(ctx, "compute1")
	if err != nil {
		t.Fatal(err)
	}
	rescues, err := findVMsBy(ctx, tg.Client, func(oc map[string]string) bool { return oc[KeyRescueOf] == g.inst.UUID })
	if err != nil || len(rescues) != 1 {
		t.Fatalf("rescue VMs %v, %v", rescues, err)
	}
	disks, err := vmDisks(ctx, tg.Client, rescues[0])
	if err != nil || len(disks) != 2 {
		t.Fatalf("rescue disks %+v, %v", disks, err)
	}
	e.checkDisk("compute1", disks[0].VDIRec.UUID, image)
	if err := e.d.Unrescue(ctx, compute.InstanceRequest{Instance: g.inst, Host: "compute1"}); err != nil {
		t.Fatal(err)
	}
	checkSourceIntact(t, e, g, true)
}

// Rescue boots <name>-rescue from a rescue image with the instance's root
// attached second; Unrescue puts the original back.
func ExampleDriver_Rescue() {
	d, p, stop := exampleDriver()
	defer stop()
	ctx := context.Background()
	const uuid = "0a0a0a0a-0000-4000-8000-000000000003"
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "instance-0a0a0a0a", Disks: []int64{4 << 20}, Running: true,
		OtherConfig: map[string]string{KeyNovaUUID: uuid}}); err != nil {
		log.Fatal(err)
	}
	// The rescue image, cached on the SR as Nova's image cache keeps it.
	t, err := d.pool(ctx, "compute1")
	if err != nil {
		log.Fatal(err)
	}
	if _, err := t.Client.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "rescue image", SR: t.SR, VirtualSize: 4 << 20,
		Type: xenapi.VDITypeUser, OtherConfig: map[string]string{KeyImageID: "rescue-image-1"}}); err != nil {
		log.Fatal(err)
	}
	inst := &compute.Instance{UUID: uuid, Name: "instance-0a0a0a0a", Hostname: "web1"}
	if err := d.Rescue(ctx, compute.RescueRequest{Instance: inst, Host: "compute1", ImageRef: "rescue-image-1"}); err != nil {
		log.Fatal(err)
	}
	vms, err := findVMsBy(ctx, t.Client, func(oc map[string]string) bool { return oc[KeyRescueOf] == uuid })
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(vms[0].Rec.NameLabel, vms[0].Rec.PowerState, vms[0].Rec.XenstoreData[xenstoreHostname])
	if err := d.Unrescue(ctx, compute.InstanceRequest{Instance: inst, Host: "compute1"}); err != nil {
		log.Fatal(err)
	}
	info, err := d.GetInfo(ctx, compute.InstanceRequest{Instance: inst, Host: "compute1"})
	fmt.Println(info.PowerState == statemachine.PowerRunning, err)
	// Output:
	// instance-0a0a0a0a-rescue Running RESCUE-web1
	// true <nil>
}
