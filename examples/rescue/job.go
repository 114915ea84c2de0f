package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/rescue"
	"github.com/xenflow/xenflow/sqlstore"
	"github.com/xenflow/xenflow/xenapi"
)

// job is one rescue and unrescue of an instance, on whatever pool.
type job struct {
	stdout  io.Writer
	jsonOut bool
	driver  rescue.Driver
	// images checks the rescue image before anything changes.
	images rescue.ImageChecker
	client *xenapi.Client
	inst   *compute.Instance
	image  string
	// db is the -db DSN (memory when empty), resume asks to finish what
	// it holds instead of a rescue.
	db     string
	resume bool
	// marker, when set, writes data through the rescue VM's userdevice 1
	// and reads it back from the original root disk after the unrescue.
	marker *marker
}

// marker is the data a simulated run writes through the rescue VM.
type marker struct {
	// kept is what the instance had at byte 0 before the rescue.
	kept  []byte
	data  []byte
	off   int64
	write func(rescueVM xenapi.VMRef, userdevice string, off int64, data []byte) error
	read  func(vdi xenapi.VDIRef, off int64, n int) ([]byte, error)
}

// summary is what the run ends with.
type summary struct {
	Instance        string `json:"instance"`
	Host            string `json:"host"`
	RescueVM        string `json:"rescue_vm"`
	RescueDisk      string `json:"rescue_userdevice_1_vdi"`
	OriginalRoot    string `json:"original_root_vdi"`
	PasswordLength  int    `json:"password_length"`
	MarkerWritten   bool   `json:"marker_written"`
	MarkerFound     bool   `json:"marker_found_after_unrescue"`
	FinalVMState    string `json:"final_vm_state"`
	OriginalPower   string `json:"original_power_state"`
	RescueMillis    int64  `json:"rescue_ms"`
	UnrescueMillis  int64  `json:"unrescue_ms"`
	RescueVMsLeft   int    `json:"rescue_vms_left"`
	OriginalBootLck bool   `json:"original_bootlocked"`
}

// run rescues the instance, checks the rescue VM, unrescues and checks the
// original.
func (j *job) run(ctx context.Context) error {
	st, closeStore, err := openStore(ctx, j.db)
	if err != nil {
		return err
	}
	defer closeStore()
	store := &printingStore{Store: st, out: j.stdout}
	o, err := rescue.New(rescue.Config{Store: store, Driver: j.driver, Images: j.images, Owner: "examples-rescue"})
	if err != nil {
		return err
	}
	if j.resume {
		err := o.Resume(ctx)
		fmt.Fprintln(j.stdout, "resumed every rescue and unrescue left unfinished")
		return err
	}
	if err := createOrLoad(ctx, store, j.inst); err != nil {
		return err
	}
	sum := summary{Instance: j.inst.UUID, Host: j.inst.Host}
	fmt.Fprintf(j.stdout, "instance %s (%s) on %s: %s\n", j.inst.UUID, j.inst.Name, j.inst.Host, j.inst.FlowState(nil))

	start := time.Now()
	res, err := o.Rescue(ctx, rescue.RescueRequest{InstanceUUID: j.inst.UUID, ImageRef: j.image, RequestID: j.requestID("rescue")})
	if err != nil {
		return fmt.Errorf("rescue: %w", err)
	}
	sum.RescueMillis = time.Since(start).Milliseconds()
	sum.PasswordLength = len(res.AdminPassword)
	fmt.Fprintf(j.stdout, "rescued in %v; the rescue guest's password (shown once): %s\n", time.Since(start).Round(time.Millisecond), res.AdminPassword)
	if err := j.checkRescued(ctx, &sum); err != nil {
		return err
	}

	start = time.Now()
	after, err := o.Unrescue(ctx, rescue.UnrescueRequest{InstanceUUID: j.inst.UUID, RequestID: j.requestID("unrescue")})
	if err != nil {
		return fmt.Errorf("unrescue: %w", err)
	}
	sum.UnrescueMillis = time.Since(start).Milliseconds()
	sum.FinalVMState = string(after.VMState)
	if err := j.checkUnrescued(ctx, &sum); err != nil {
		return err
	}
	return j.report(sum)
}

// requestID names a run's request; with -db, where the instance actions
// of earlier runs are kept, it carries the time so each run's is new.
func (j *job) requestID(action string) string {
	if j.db == "" {
		return "req-examples-" + action
	}
	return fmt.Sprintf("req-examples-%s-%d", action, time.Now().UnixNano())
}

// openStore opens the Store -db names (memory when empty) and returns it
// with the function that closes it.
func openStore(ctx context.Context, dsn string) (compute.Store, func(), error) {
	if dsn == "" {
		return compute.NewMemoryStore(), func() {}, nil
	}
	db, err := sqlstore.Open(ctx, dsn)
	if err != nil {
		return nil, func() {}, fmt.Errorf("-db: %w", err)
	}
	return db, func() { _ = db.Close() }, nil
}

// createOrLoad creates the instance in the Store, or takes the record an
// earlier run on the same -db left there.
func createOrLoad(ctx context.Context, store compute.Store, inst *compute.Instance) error {
	kept, err := store.GetInstance(ctx, inst.UUID)
	switch {
	case errors.Is(err, compute.ErrNotFound):
		return store.CreateInstance(ctx, inst)
	case err != nil:
		return err
	}
	*inst = *kept
	return nil
}

// checkRescued finds the rescue VM, checks that its userdevice 1 is the
// original root disk and, on a simulated pool, writes the marker through
// it.
func (j *job) checkRescued(ctx context.Context, sum *summary) error {
	orig, err := findVM(ctx, j.client, j.inst.Name)
	if err != nil {
		return err
	}
	resc, err := findVM(ctx, j.client, j.inst.Name+"-rescue")
	if err != nil {
		return err
	}
	root, err := diskAt(ctx, j.client, orig.ref, "0")
	if err != nil {
		return err
	}
	second, err := diskAt(ctx, j.client, resc.ref, "1")
	if err != nil {
		return err
	}
	sum.RescueVM, sum.OriginalRoot, sum.RescueDisk = resc.rec.UUID, root.uuid, second.uuid
	if second.uuid != root.uuid {
		return fmt.Errorf("the rescue VM's userdevice 1 is VDI %s, not the original root disk %s", second.uuid, root.uuid)
	}
	_, locked := orig.rec.BlockedOperations["start"]
	fmt.Fprintf(j.stdout, "rescue VM %s is %s with the original root disk %s as userdevice 1; the original is %s, bootlocked=%v\n",
		resc.rec.NameLabel, resc.rec.PowerState, root.uuid, orig.rec.PowerState, locked)
	if j.marker == nil {
		return nil
	}
	if err := j.marker.write(resc.ref, "1", j.marker.off, j.marker.data); err != nil {
		return fmt.Errorf("writing the marker through the rescue VM: %w", err)
	}
	sum.MarkerWritten = true
	fmt.Fprintf(j.stdout, "wrote %q at byte %d through the rescue VM's userdevice 1\n", j.marker.data, j.marker.off)
	return nil
}

// checkUnrescued checks that no rescue VM is left, the original runs
// without a bootlock and, on a simulated pool, holds the marker.
func (j *job) checkUnrescued(ctx context.Context, sum *summary) error {
	orig, err := findVM(ctx, j.client, j.inst.Name)
	if err != nil {
		return err
	}
	left, err := j.client.VM.GetByNameLabel(ctx, j.inst.Name+"-rescue")
	if err != nil {
		return err
	}
	sum.RescueVMsLeft = len(left)
	_, sum.OriginalBootLck = orig.rec.BlockedOperations["start"]
	sum.OriginalPower = string(orig.rec.PowerState)
	fmt.Fprintf(j.stdout, "unrescued: the original is %s, bootlocked=%v; rescue VMs left: %d\n", orig.rec.PowerState, sum.OriginalBootLck, len(left))
	if len(left) != 0 || sum.OriginalBootLck || !orig.rec.PowerState.Is(xenapi.VMPowerStateRunning) {
		return fmt.Errorf("after the unrescue: %d rescue VMs, bootlocked=%v, original %s", len(left), sum.OriginalBootLck, orig.rec.PowerState)
	}
	if j.marker == nil {
		return nil
	}
	root, err := diskAt(ctx, j.client, orig.ref, "0")
	if err != nil {
		return err
	}
	got, err := j.marker.read(root.ref, j.marker.off, len(j.marker.data))
	if err != nil {
		return err
	}
	kept, err := j.marker.read(root.ref, 0, len(j.marker.kept))
	if err != nil {
		return err
	}
	if string(kept) != string(j.marker.kept) {
		return fmt.Errorf("the original root disk lost its data: %q at byte 0, want %q", kept, j.marker.kept)
	}
	if string(got) != string(j.marker.data) {
		return fmt.Errorf("the original root disk holds %q at byte %d, not the marker %q", got, j.marker.off, j.marker.data)
	}
	sum.MarkerFound = true
	fmt.Fprintf(j.stdout, "the original root disk %s holds the marker and its own data\n", root.uuid)
	return nil
}

// report prints the one-line summary, as JSON with -json.
func (j *job) report(s summary) error {
	if j.jsonOut {
		b, err := json.Marshal(s)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(j.stdout, string(b))
		return err
	}
	_, err := fmt.Fprintf(j.stdout, "summary: instance %s on %s rescued in %d ms (rescue VM %s saw root %s as userdevice 1, marker found: %v), unrescued in %d ms, now %s and %s\n",
		s.Instance, s.Host, s.RescueMillis, s.RescueVM, s.OriginalRoot, s.MarkerFound, s.UnrescueMillis, s.FinalVMState, s.OriginalPower)
	return err
}

// printingStore prints each step the orchestrator writes.
type printingStore struct {
	compute.Store
	out io.Writer
}

// Transition implements compute.TransitionStore and prints the step.
func (s *printingStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil {
		fmt.Fprintf(s.out, "  %s -> %s\n", req.Expect, inst.FlowState(mig))
	}
	return inst, mig, err
}

// vm is a VM found by name.
type vm struct {
	ref xenapi.VMRef
	rec xenapi.VMRecord
}

// findVM returns the one VM named name.
func findVM(ctx context.Context, c *xenapi.Client, name string) (vm, error) {
	refs, err := c.VM.GetByNameLabel(ctx, name)
	if err != nil {
		return vm{}, err
	}
	if len(refs) != 1 {
		return vm{}, fmt.Errorf("%d VMs are named %q, want 1", len(refs), name)
	}
	rec, err := c.VM.GetRecord(ctx, refs[0])
	if err != nil {
		return vm{}, err
	}
	return vm{ref: refs[0], rec: rec}, nil
}

// disk is a VDI attached to a VM.
type disk struct {
	ref  xenapi.VDIRef
	uuid string
}

// diskAt returns the VDI at a VM's userdevice.
func diskAt(ctx context.Context, c *xenapi.Client, ref xenapi.VMRef, userdevice string) (disk, error) {
	vbds, err := c.VM.GetVBDs(ctx, ref)
	if err != nil {
		return disk{}, err
	}
	for _, vbd := range vbds {
		rec, err := c.VBD.GetRecord(ctx, vbd)
		if err != nil {
			return disk{}, err
		}
		if rec.Userdevice != userdevice || rec.VDI.IsNull() {
			continue
		}
		uuid, err := c.VDI.GetUUID(ctx, rec.VDI)
		if err != nil {
			return disk{}, err
		}
		return disk{ref: rec.VDI, uuid: uuid}, nil
	}
	return disk{}, fmt.Errorf("VM %s has no disk at userdevice %s", ref, userdevice)
}
