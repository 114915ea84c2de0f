package xenapi

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func bg() context.Context { return context.Background() }

func TestLoginSendsOriginatorAndCloseLogsOut(t *testing.T) {
	f := newFakeXapi(t)
	c := f.login(t)
	calls := f.callLog()
	want := []any{"root", "secret", "1.1", "xenflow-test"}
	if calls[0].Method != "session.login_with_password" || !cmp.Equal(calls[0].Params, want) {
		t.Fatalf("login call = %+v", calls[0])
	}
	if f.liveSessions() != 1 || c.Session() == "" {
		t.Fatalf("sessions = %d, client session %q", f.liveSessions(), c.Session())
	}
	if err := c.Close(bg()); err != nil {
		t.Fatal(err)
	}
	if f.liveSessions() != 0 {
		t.Fatalf("%d sessions left after Close", f.liveSessions())
	}
	_, err := c.VM.GetAll(bg())
	if !errors.Is(err, ErrNotLoggedIn) {
		t.Fatalf("call after Close: %v", err)
	}
	// A second login replaces (and logs out) the first session.
	c2 := f.login(t)
	if err := c2.Login(bg(), "root", "secret", "again"); err != nil {
		t.Fatal(err)
	}
	if f.liveSessions() != 1 {
		t.Fatalf("%d sessions after re-Login, want 1", f.liveSessions())
	}
	_ = c2.Close(bg())
}

func TestLoginWithoutOriginatorSendsShortList(t *testing.T) {
	f := newFakeXapi(t)
	c, _ := NewClient(f.srv.URL)
	if err := c.Login(bg(), "root", "secret", ""); err != nil {
		t.Fatal(err)
	}
	defer c.Close(bg())
	if got := f.callLog()[0].Params; len(got) != 2 {
		t.Fatalf("login params %v, want 2", got)
	}
}

func TestLoginFailure(t *testing.T) {
	f := newFakeXapi(t)
	c, _ := NewClient(f.srv.URL)
	err := c.Login(bg(), "root", "wrong", "x")
	if !errors.Is(err, ErrSessionAuthenticationFailed) {
		t.Fatalf("got %v", err)
	}
	var ce *CallError
	if !errors.As(err, &ce) || ce.Method != "session.login_with_password" || strings.Contains(err.Error(), "wrong") {
		t.Fatalf("error %q must name the method and not leak the password", err)
	}
	if want := "xenapi: session.login_with_password at " + f.srv.URL + "/: SESSION_AUTHENTICATION_FAILED"; err.Error() != want {
		t.Fatalf("error text %q, want %q", err, want)
	}
}

func TestReloginOnSessionInvalid(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.get_all", func([]any) (any, []string) { return []any{"OpaqueRef:vm-1"}, nil })
	c := f.login(t)
	defer c.Close(bg())
	first := c.Session()
	f.invalidateSessions()
	refs, err := c.VM.GetAll(bg())
	if err != nil {
		t.Fatal(err)
	}
	if !cmp.Equal(refs, []VMRef{"OpaqueRef:vm-1"}) || c.Session() == first {
		t.Fatalf("refs %v, session %q (was %q)", refs, c.Session(), first)
	}
	want := []string{"session.login_with_password", "VM.get_all", "session.login_with_password", "VM.get_all"}
	if !cmp.Equal(f.methods(), want) {
		t.Fatalf("calls %v, want %v", f.methods(), want)
	}
}

func TestReloginRetriesOnlyOnce(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.get_all", func([]any) (any, []string) { return nil, []string{CodeSessionInvalid, "x"} })
	c := f.login(t)
	defer c.Close(bg())
	_, err := c.VM.GetAll(bg())
	if !errors.Is(err, ErrSessionInvalid) {
		t.Fatalf("got %v", err)
	}
	if n := len(f.callLog()); n != 4 {
		t.Fatalf("%d calls (%v), want login, call, login, call", n, f.methods())
	}
}

func TestConcurrentReloginLogsInOnce(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.get_all", func([]any) (any, []string) { return []any{}, nil })
	c := f.login(t)
	defer c.Close(bg())
	f.invalidateSessions()
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := c.VM.GetAll(bg()); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	logins := 0
	for _, m := range f.methods() {
		if m == "session.login_with_password" {
			logins++
		}
	}
	if logins != 2 {
		t.Fatalf("%d logins, want 2 (initial and one re-login)", logins)
	}
	if f.liveSessions() != 1 {
		t.Fatalf("%d live sessions, want 1", f.liveSessions())
	}
}

func TestHostIsSlaveRedirect(t *testing.T) {
	master := newFakeXapi(t)
	master.handle("VM.get_all", func([]any) (any, []string) { return []any{"OpaqueRef:vm"}, nil })
	member := newFakeXapi(t)
	mu, _ := url.Parse(master.srv.URL)
	member.slaveOf = mu.Host // "127.0.0.1:port"

	c, _ := NewClient(member.srv.URL)
	if err := c.Login(bg(), "root", "secret", "x"); err != nil {
		t.Fatal(err)
	}
	defer c.Close(bg())
	if c.URL() != master.srv.URL+"/" {
		t.Fatalf("client URL %s, want the master %s", c.URL(), master.srv.URL)
	}
	if _, err := c.VM.GetAll(bg()); err != nil {
		t.Fatal(err)
	}
	if master.liveSessions() != 1 || member.liveSessions() != 0 {
		t.Fatal("session not on the master")
	}

	// A call answered with HOST_IS_SLAVE (the master changed) is sent again
	// to the new master.
	newMaster := newFakeXapi(t)
	newMaster.handle("VM.get_all", func([]any) (any, []string) { return []any{"OpaqueRef:other"}, nil })
	nm, _ := url.Parse(newMaster.srv.URL)
	master.handle("VM.get_all", func([]any) (any, []string) { return nil, []string{CodeHostIsSlave, nm.Host} })
	refs, err := c.VM.GetAll(bg())
	// The new master does not know the session: the client logs in again.
	if err != nil || !cmp.Equal(refs, []VMRef{"OpaqueRef:other"}) {
		t.Fatalf("after redirect: %v %v (calls on new master: %v)", refs, err, newMaster.methods())
	}
}

func TestFailureErrors(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.get_record", func(p []any) (any, []string) { return nil, []string{CodeHandleInvalid, "VM", p[0].(string)} })
	f.handle("VM.start", func(p []any) (any, []string) {
		return nil, []string{CodeVMBadPowerState, p[0].(string), "halted", "running"}
	})
	f.handle("SR.scan", func([]any) (any, []string) {
		return nil, []string{"SR_BACKEND_FAILURE_40", "", "The SR scan failed", "stderr"}
	})
	f.handle("VDI.snapshot", func([]any) (any, []string) {
		return nil, []string{CodeMessageParameterCountMismatch, "VDI.snapshot", "1", "2"}
	})
	c := f.login(t)
	defer c.Close(bg())

	_, err := c.VM.GetRecord(bg(), "OpaqueRef:gone")
	var fl *Failure
	if !errors.As(err, &fl) || fl.Code != CodeHandleInvalid {
		t.Fatalf("got %v", err)
	}
	if class, h, ok := fl.HandleInvalid(); !ok || class != "VM" || h != "OpaqueRef:gone" {
		t.Fatalf("HandleInvalid() = %q %q %v", class, h, ok)
	}
	if !IsCode(err, CodeHandleInvalid) || !errors.Is(err, ErrHandleInvalid) || errors.Is(err, ErrVDIInUse) {
		t.Fatal("IsCode / errors.Is do not match the code")
	}
	if !errors.Is(err, &Failure{Code: CodeHandleInvalid, Params: []string{"VM", "OpaqueRef:gone"}}) {
		t.Fatal("errors.Is with parameters")
	}

	err = c.VM.Start(bg(), "OpaqueRef:vm", false, false)
	fl, _ = AsFailure(err)
	if vm, exp, act, ok := fl.VMBadPowerState(); !ok || vm != "OpaqueRef:vm" || !exp.Is(VMPowerStateHalted) || !act.Is(VMPowerStateRunning) {
		t.Fatalf("VMBadPowerState() = %v %v %v %v", vm, exp, act, ok)
	}

	err = c.SR.Scan(bg(), "OpaqueRef:sr")
	if !IsSRBackendFailure(err) {
		t.Fatalf("got %v", err)
	}
	fl, _ = AsFailure(err)
	if n, params, ok := fl.SRBackendFailure(); !ok || n != 40 || params[1] != "The SR scan failed" {
		t.Fatalf("SRBackendFailure() = %d %q %v", n, params, ok)
	}

	_, err = c.VDI.Snapshot(bg(), "OpaqueRef:vdi", map[string]string{"k": "v"})
	fl, _ = AsFailure(err)
	if m, exp, rec, ok := fl.ParameterCountMismatch(); !ok || m != "VDI.snapshot" || exp != 1 || rec != 2 {
		t.Fatalf("ParameterCountMismatch() = %q %d %d %v", m, exp, rec, ok)
	}

	_, err = c.Call(bg(), "VM.no_such_call")
	fl, _ = AsFailure(err)
	if m, ok := fl.MessageMethodUnknown(); !ok || m != "VM.no_such_call" {
		t.Fatalf("MessageMethodUnknown() = %q %v (%v)", m, ok, err)
	}
}

func TestFailureAccessors(t *testing.T) {
	tests := []struct {
		f    *Failure
		want []any
		get  func(*Failure) []any
	}{
		{&Failure{CodeOperationBlocked, []string{"OpaqueRef:vm", "bootlock"}}, []any{"OpaqueRef:vm", "bootlock", true},
			func(f *Failure) []any { a, b, ok := f.OperationBlocked(); return []any{a, b, ok} }},
		{&Failure{CodeHostIsSlave, []string{"10.0.0.1"}}, []any{"10.0.0.1", true},
			func(f *Failure) []any { a, ok := f.HostIsSlave(); return []any{a, ok} }},
		{&Failure{CodeVDIInUse, []string{"OpaqueRef:vdi", "destroy"}}, []any{VDIRef("OpaqueRef:vdi"), "destroy", true},
			func(f *Failure) []any { a, b, ok := f.VDIInUse(); return []any{a, b, ok} }},
		{&Failure{CodeSRBackendFailure, []string{"1", "out", "err"}}, []any{0, []string{"1", "out", "err"}, true},
			func(f *Failure) []any { n, p, ok := f.SRBackendFailure(); return []any{n, p, ok} }},
		{&Failure{"SR_BACKEND_FAILURE_X", nil}, []any{0, []string(nil), false},
			func(f *Failure) []any { n, p, ok := f.SRBackendFailure(); return []any{n, p, ok} }},
		{&Failure{CodeMessageRemoved, nil}, []any{"", false},
			func(f *Failure) []any { a, ok := f.HostIsSlave(); return []any{a, ok} }},
		{&Failure{CodeMessageParameterCountMismatch, []string{"m", "x"}}, []any{"m", -1, -1, true},
			func(f *Failure) []any { m, a, b, ok := f.ParameterCountMismatch(); return []any{m, a, b, ok} }},
	}
	for _, tt := range tests {
		if got := tt.get(tt.f); !cmp.Equal(got, tt.want) {
			t.Errorf("%v: got %v, want %v", tt.f, got, tt.want)
		}
	}
	if !errors.Is(&Failure{Code: CodeMessageRemoved}, ErrMessageRemoved) {
		t.Error("MESSAGE_REMOVED sentinel")
	}
	if got := (&Failure{"X", []string{"a b"}}).Error(); got != `xenapi: X ["a b"]` {
		t.Errorf("Error() = %s", got)
	}
}

func TestGetAllRecordsTyped(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.get_all_records", func([]any) (any, []string) {
		return map[string]any{"OpaqueRef:vm-1": vmRecordValue("one"), "OpaqueRef:vm-2": vmRecordValue("two")}, nil
	})
	c := f.login(t)
	defer c.Close(bg())
	recs, err := c.VM.GetAllRecords(bg())
	if err != nil {
		t.Fatal(err)
	}
	r := recs["OpaqueRef:vm-1"]
	want := VMRecord{
		UUID: "0b5b1c9e-1111-4222-8333-444455556666", NameLabel: "one", PowerState: VMPowerStateRunning, UserVersion: 1,
		ResidentOn: "OpaqueRef:host-1", MemoryStaticMax: 8 << 30, MemoryDynamicMax: 8 << 30, MemoryDynamicMin: 4 << 30,
		MemoryStaticMin: 1 << 30, MemoryTarget: 8 << 30, VCPUsMax: 4, VCPUsAtStartup: 2, VCPUsParams: map[string]string{},
		ActionsAfterShutdown: "destroy", ActionsAfterReboot: "restart", ActionsAfterCrash: "restart",
		VBDs: []VBDRef{"OpaqueRef:vbd-1", "OpaqueRef:vbd-2"}, HVMBootPolicy: "BIOS order", HVMShadowMultiplier: 1,
		OtherConfig: map[string]string{"nova_uuid": "abc", "empty": ""}, BlockedOperations: map[VMOperation]string{VMOperationStart: "bootlock"},
		Domid: 7, SnapshotTime: time.Unix(0, 0).UTC(), AllowedOperations: []VMOperation{"hard_shutdown", "some_future_op"},
		DomainType: DomainTypeHVM, Tags: []string{},
	}
	if diff := cmp.Diff(want, r); diff != "" {
		t.Fatalf("record (-want +got):\n%s", diff)
	}
	if r.AllowedOperations[1].Known() || !r.AllowedOperations[0].Known() {
		t.Fatal("unknown enum value must be kept and reported as unknown")
	}
	if len(recs) != 2 || recs["OpaqueRef:vm-2"].NameLabel != "two" {
		t.Fatalf("records %v", recs)
	}
}

func TestWrongTypesAreTypeErrors(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.get_record", func([]any) (any, []string) {
		r := vmRecordValue("x")
		r["VCPUs_max"] = "four"
		return r, nil
	})
	f.handle("VM.get_all", func([]any) (any, []string) { return map[string]any{}, nil })
	f.handle("VM.get_power_state", func([]any) (any, []string) { return []any{}, nil })
	c := f.login(t)
	defer c.Close(bg())
	var te *TypeError
	_, err := c.VM.GetRecord(bg(), "OpaqueRef:x")
	if !errors.As(err, &te) || te.Path != "VM.get_record.VCPUs_max" {
		t.Fatalf("got %v", err)
	}
	if _, err := c.VM.GetAll(bg()); !errors.As(err, &te) || te.Want != "array" {
		t.Fatalf("got %v", err)
	}
	if _, err := c.VM.GetPowerState(bg(), "x"); !errors.As(err, &te) || te.Got != "array" {
		t.Fatalf("got %v", err)
	}
}

func TestInt64SentAsDecimalStrings(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VM.set_memory_limits", func([]any) (any, []string) { return "", nil })
	f.handle("VDI.resize", func([]any) (any, []string) { return "", nil })
	f.handle("VM.create", func([]any) (any, []string) { return "OpaqueRef:new", nil })
	c := f.login(t)
	defer c.Close(bg())
	if err := c.VM.SetMemoryLimits(bg(), "OpaqueRef:vm", 1<<30, 8<<30, 4<<30, 8<<30); err != nil {
		t.Fatal(err)
	}
	if err := c.VDI.Resize(bg(), "OpaqueRef:vdi", 21474836480); err != nil {
		t.Fatal(err)
	}
	ref, err := c.VM.Create(bg(), VMRecord{NameLabel: "new", MemoryStaticMax: 1 << 33, VCPUsMax: 2, BlockedOperations: map[VMOperation]string{"start": ""}})
	if err != nil || ref != "OpaqueRef:new" {
		t.Fatal(ref, err)
	}
	calls := f.callLog()
	if got := calls[1].Params[1:]; !cmp.Equal(got, []any{"OpaqueRef:vm", "1073741824", "8589934592", "4294967296", "8589934592"}) {
		t.Fatalf("set_memory_limits params %v", got)
	}
	if got := calls[2].Params[1:]; !cmp.Equal(got, []any{"OpaqueRef:vdi", "21474836480"}) {
		t.Fatalf("resize params %v", got)
	}
	if _, err := c.Call(bg(), "VDI.resize", VDIRef("OpaqueRef:vdi"), 42); err != nil {
		t.Fatal(err)
	}
	if got := f.callLog()[4].Params[2]; got != "42" {
		t.Fatalf("Call with an int sent %#v", got)
	}
	// Integers inside lists and maps given to Call go as strings too;
	// []byte stays base64.
	nested := map[string]any{"memory_static_max": int64(8 << 30), "VCPUs_max": 2, "list": []int{1, 2},
		"deep": []map[string]any{{"n": uint16(7)}}, "refs": []VDIRef{"OpaqueRef:a"}, "blob": []byte("x")}
	if _, err := c.Call(bg(), "VM.create", nested); err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"memory_static_max": "8589934592", "VCPUs_max": "2", "list": []any{"1", "2"},
		"deep": []any{map[string]any{"n": "7"}}, "refs": []any{"OpaqueRef:a"}, "blob": []byte("x")}
	if got := f.callLog()[5].Params[1]; !cmp.Equal(got, want) {
		t.Fatalf("Call with nested ints sent %#v", got)
	}
	rec := calls[3].Params[1].(map[string]any)
	if rec["memory_static_max"] != "8589934592" || rec["VCPUs_max"] != "2" || rec["name_description"] != "" {
		t.Fatalf("create record %v", rec)
	}
	for _, k := range []string{"uuid", "power_state", "domain_type", "VBDs", "resident_on", "HVM_shadow_multiplier"} {
		if _, ok := rec[k]; ok {
			t.Errorf("create record sends %s", k)
		}
	}
	if m, ok := rec["VCPUs_params"].(map[string]any); !ok || len(m) != 0 {
		t.Errorf("nil map must go as an empty struct, got %#v", rec["VCPUs_params"])
	}
	if m := rec["blocked_operations"].(map[string]any); m["start"] != "" {
		t.Errorf("blocked_operations %v", m)
	}
}

func TestShortestParameterLists(t *testing.T) {
	f := newFakeXapi(t)
	for _, m := range []string{"VM.snapshot", "VDI.snapshot", "VDI.clone", "VDI.copy"} {
		f.handle(m, func([]any) (any, []string) { return "OpaqueRef:r", nil })
	}
	c := f.login(t)
	defer c.Close(bg())
	_, _ = c.VM.Snapshot(bg(), "vm", "snap")
	_, _ = c.VM.Snapshot(bg(), "vm", "snap", "OpaqueRef:skip")
	_, _ = c.VDI.Snapshot(bg(), "vdi", nil)
	_, _ = c.VDI.Clone(bg(), "vdi", map[string]string{"k": "v"})
	_, _ = c.VDI.Copy(bg(), "vdi", "sr", "", NullRef)
	_, _ = c.VDI.Copy(bg(), "vdi", "sr", "", "OpaqueRef:into")
	var got [][]any
	for _, call := range f.callLog()[1:] {
		got = append(got, call.Params[1:])
	}
	want := [][]any{
		{"vm", "snap"},
		{"vm", "snap", []any{"OpaqueRef:skip"}},
		{"vdi"},
		{"vdi", map[string]any{"k": "v"}},
		{"vdi", "sr"},
		{"vdi", "sr", "", "OpaqueRef:into"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("params (-want +got):\n%s", diff)
	}
}

// TestEveryTypedCall calls every typed method (sync and Async) with zero
// arguments and checks that the wire name is the one the generator listed
// and that each is reachable.
func TestEveryTypedCall(t *testing.T) {
	f := newFakeXapi(t)
	c := f.login(t)
	defer c.Close(bg())
	seen := map[string]bool{}
	var mu sync.Mutex
	all := append(wireMethods(), handWrittenMethods()...)
	for _, m := range all {
		m := m
		f.handle(m, func([]any) (any, []string) {
			mu.Lock()
			seen[m] = true
			mu.Unlock()
			return nil, []string{"SCRIPTED", m}
		})
	}
	n := 0
	cv := reflect.ValueOf(c).Elem()
	var visit func(v reflect.Value)
	visit = func(v reflect.Value) {
		for i := 0; i < v.NumField(); i++ {
			fv := v.Field(i)
			if !v.Type().Field(i).IsExported() || fv.Kind() != reflect.Struct {
				continue
			}
			if fv.Type() == reflect.TypeOf(AsyncClasses{}) {
				visit(fv)
				continue
			}
			for j := 0; j < fv.NumMethod(); j++ {
				meth := fv.Method(j)
				mt := meth.Type()
				args := []reflect.Value{reflect.ValueOf(bg())}
				for k := 1; k < mt.NumIn(); k++ {
					if mt.IsVariadic() && k == mt.NumIn()-1 {
						break
					}
					args = append(args, reflect.Zero(mt.In(k)))
				}
				out := meth.Call(args)
				err, _ := out[len(out)-1].Interface().(error)
				if !IsCode(err, "SCRIPTED") {
					t.Errorf("%s.%s: %v", fv.Type().Name(), fv.Type().Method(j).Name, err)
				}
				n++
			}
		}
	}
	visit(cv)
	var missing []string
	for _, m := range all {
		if !seen[m] {
			missing = append(missing, m)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 || n != len(all) {
		t.Fatalf("%d methods called, %d wire names; not reached: %v", n, len(all), missing)
	}
}

func TestVDIIntroduceParameters(t *testing.T) {
	f := newFakeXapi(t)
	f.handle("VDI.introduce", func([]any) (any, []string) { return "OpaqueRef:vdi", nil })
	c := f.login(t)
	defer c.Close(bg())
	base := VDIIntroduceArgs{UUID: "u", NameLabel: "n", SR: "OpaqueRef:sr", Type: VDITypeUser, Location: "u"}
	if _, err := c.VDI.Introduce(bg(), base); err != nil {
		t.Fatal(err)
	}
	withSize := base
	withSize.VirtualSize = 1 << 30
	if _, err := c.VDI.Introduce(bg(), withSize); err != nil {
		t.Fatal(err)
	}
	calls := f.callLog()
	short := calls[1].Params[1:]
	if len(short) != 9 || !cmp.Equal(short[7], map[string]any{}) {
		t.Fatalf("short form %v", short)
	}
	long := calls[2].Params[1:]
	want := []any{"u", "n", "", "OpaqueRef:sr", "user", false, false, map[string]any{}, "u", map[string]any{}, map[string]any{}, true, "1073741824"}
	if !cmp.Equal(long, want) {
		t.Fatalf("long form %v\nwant %v", long, want)
	}
}

func TestHTTPAndProtocolErrors(t *testing.T) {
	f := newFakeXapi(t)
	f.handleRaw("VM.get_all", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("<html><body><h1>HTTP 500 internal server error</h1>An unexpected error occurred</body></html>"))
	})
	f.handleRaw("VM.get_record", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<methodResponse><params><param><value><struct><member><name>Status</name><value>Succ"))
	})
	f.handleRaw("VM.get_uuid", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<methodResponse><params><param><value>not an envelope</value></param></params></methodResponse>"))
	})
	f.handleRaw("VM.get_name_label", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>-1</int></value></member><member><name>faultString</name><value>boom</value></member></struct></value></fault></methodResponse>"))
	})
	f.handleRaw("VM.get_all_records", func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte("<methodResponse><params><param><value>"))
		chunk := []byte(strings.Repeat("x", 64<<10))
		for i := 0; i < 64; i++ { // 4 MiB
			if _, err := w.Write(chunk); err != nil {
				return
			}
		}
	})
	c := f.login(t, WithMaxResponseSize(1<<20))
	defer c.Close(bg())

	_, err := c.VM.GetAll(bg())
	var he *HTTPError
	if !errors.As(err, &he) || he.Status != 500 || he.Method != http.MethodPost || he.Path != "/" || !strings.Contains(he.Body, "unexpected error") {
		t.Fatalf("got %v", err)
	}
	_, err = c.VM.GetRecord(bg(), "x")
	var de *DecodeError
	if !errors.As(err, &de) || de.Offset == 0 {
		t.Fatalf("truncated body: got %v", err)
	}
	if _, err = c.VM.GetUUID(bg(), "x"); !errors.Is(err, ErrBadEnvelope) {
		t.Fatalf("not an envelope: got %v", err)
	}
	var fault *Fault
	if _, err = c.VM.GetNameLabel(bg(), "x"); !errors.As(err, &fault) || fault.String != "boom" {
		t.Fatalf("fault: got %v", err)
	}
	if _, err = c.VM.GetAllRecords(bg()); !errors.Is(err, ErrResponseTooLarge) {
		t.Fatalf("huge body: got %v", err)
	}
	// The client still works after all that.
	f.handle("VM.get_domid", func([]any) (any, []string) { return "3", nil })
	if d, err := c.VM.GetDomid(bg(), "x"); err != nil || d != 3 {
		t.Fatal(d, err)
	}
}

func TestHangingServerHonoursContextAndTimeout(t *testing.T) {
	f := newFakeXapi(t)
	release := make(chan struct{})
	defer close(release)
	f.handleRaw("VM.get_all", hangUntil(release))
	c := f.login(t)
	defer c.Close(bg())
	ctx, cancel := context.WithTimeout(bg(), 100*time.Millisecond)
	defer cancel()
	_, err := c.VM.GetAll(ctx)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("got %v", err)
	}
	c2 := f.login(t, WithCallTimeout(100*time.Millisecond))
	defer c2.Close(bg())
	if _, err := c2.VM.GetAll(bg()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("WithCallTimeout: got %v", err)
	}
}

func TestBlockingEventFromDoesNotStallOtherCalls(t *testing.T) {
	f := newFakeXapi(t)
	release := make(chan struct{})
	f.handle("event.from", func(p []any) (any, []string) {
		<-release
		return map[string]any{"events": []any{map[string]any{"id": "1", "class": "vm", "operation": "mod", "ref": "OpaqueRef:vm",
			"snapshot": vmRecordValue("after")}}, "valid_ref_counts": map[string]any{"vm": "1"}, "token": "2,3"}, nil
	})
	f.handle("VM.get_all", func([]any) (any, []string) { return []any{}, nil })
	c := f.login(t)
	defer c.Close(bg())
	done := make(chan EventBatch)
	go func() {
		b, err := c.Event.From(bg(), []string{"vm"}, "", 30)
		if err != nil {
			t.Error(err)
		}
		done <- b
	}()
	// Wait until event.from is in flight, then make other calls.
	for deadline := time.Now().Add(10 * time.Second); ; {
		f.mu.Lock()
		in := f.inflight
		f.mu.Unlock()
		if in == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("event.from never arrived")
		}
		time.Sleep(time.Millisecond)
	}
	for i := 0; i < 5; i++ {
		if _, err := c.VM.GetAll(bg()); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	b := <-done
	if len(b.Events) != 1 || b.Token != "2,3" || b.ValidRefCounts["vm"] != 1 || b.Events[0].Operation != EventOperationMod {
		t.Fatalf("batch %+v", b)
	}
	var rec VMRecord
	if err := b.Events[0].DecodeSnapshot(&rec); err != nil || rec.NameLabel != "after" {
		t.Fatalf("snapshot %v %v", rec.NameLabel, err)
	}
	if b.Events[0].ID != 1 {
		t.Fatalf("event id %d", b.Events[0].ID)
	}
}

func TestTLSVerification(t *testing.T) {
	f := newFakeXapi(t)
	tlsSrv := httptest.NewTLSServer(f)
	defer tlsSrv.Close()
	cert := tlsSrv.Certificate()
	sum := sha256.Sum256(cert.Raw)

	// Verification is on by default: a self-signed certificate fails.
	c, _ := NewClient(tlsSrv.URL)
	err := c.Login(bg(), "root", "secret", "x")
	var ue *url.Error
	if err == nil || !errors.As(err, &ue) {
		t.Fatalf("default TLS accepted an unknown certificate: %v", err)
	}

	pool := x509.NewCertPool()
	pool.AddCert(cert)
	fp := hex.EncodeToString(sum[:])
	colons := strings.ToUpper(strings.Join(splitEvery(fp, 2), ":"))
	for name, opt := range map[string]Option{
		"root CAs":        WithRootCAs(pool),
		"pin":             WithPinnedCertificate(fp),
		"pin with colons": WithPinnedCertificate("sha-256:" + colons),
		"insecure":        InsecureSkipVerify(),
	} {
		c, _ := NewClient(tlsSrv.URL, opt)
		if err := c.Login(bg(), "root", "secret", "x"); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		_ = c.Close(bg())
	}
	other := sha256.Sum256([]byte("another certificate"))
	c, _ = NewClient(tlsSrv.URL, WithPinnedCertificate(hex.EncodeToString(other[:])))
	if err := c.Login(bg(), "root", "secret", "x"); err == nil || !strings.Contains(err.Error(), "not pinned") {
		t.Fatalf("wrong pin: %v", err)
	}
	if _, err := NewClient(tlsSrv.URL, WithPinnedCertificate("abc")); err == nil {
		t.Fatal("bad fingerprint accepted")
	}
}

func splitEvery(s string, n int) []string {
	var out []string
	for len(s) > n {
		out = append(out, s[:n])
		s = s[n:]
	}
	return append(out, s)
}

func TestNewClientRejectsBadURLs(t *testing.T) {
	for _, u := range []string{"", "ftp://x", "http://", "://x", "10.0.0.1"} {
		if _, err := NewClient(u); err == nil {
			t.Errorf("NewClient(%q) accepted", u)
		}
	}
}
