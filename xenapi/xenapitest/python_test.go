package xenapitest_test

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"os"
	"os/exec"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/xenflow/xenflow/internal/oracle"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

const python = "/usr/bin/python3"

// needOracle skips when an external oracle is missing, except under CI,
// where a missing oracle is a failure.
func needOracle(t *testing.T, what string, err error) {
	t.Helper()
	if err == nil {
		return
	}
	oracle.Missing(t, "%s not available: %v", what, err)
}

// TestPythonXenAPIClient runs the official Python XenAPI client
// (os_xenapi.client.XenAPI, Debian package python3-os-xenapi) against the
// pool's XML-RPC endpoint.
func TestPythonXenAPIClient(t *testing.T) {
	_, err := os.Stat(python)
	needOracle(t, python, err)
	out, err := exec.Command(python, "-c", "import os_xenapi.client.XenAPI").CombinedOutput()
	if err != nil {
		err = &oracleErr{string(out), err}
	}
	needOracle(t, "python3-os-xenapi", err)

	p, err := xenapitest.NewPool(xenapitest.Options{Dir: t.TempDir(), Hosts: 2})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	srv := httptest.NewServer(p.Handler()) // binds 127.0.0.1
	defer srv.Close()
	p.Master().SetAddress(strings.TrimPrefix(srv.URL, "http://"))
	running, err := p.AddVM(xenapitest.VMSpec{Name: "py-running", Disks: []int64{2 << 20}, Running: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddVM(xenapitest.VMSpec{Name: "py-halted", Memory: 512 << 20}); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, python, "testdata/os_xenapi_client.py", srv.URL+"/", p.User(), p.Password(), "py-running", "py-halted", xenapitest.DefaultNetworkName)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("python client: %v\n%s", err, stderr.String())
	}
	var got struct {
		APIVersion    string          `json:"api_version"`
		Handle        string          `json:"handle"`
		VMs           [][]any         `json:"vms"`
		VMRef         string          `json:"vm_ref"`
		TaskIsRef     bool            `json:"task_is_ref"`
		TaskStatus    string          `json:"task_status"`
		TaskProgress  float64         `json:"task_progress"`
		TaskResult    string          `json:"task_result"`
		TaskErrorInfo []string        `json:"task_error_info"`
		PowerAfter    string          `json:"power_state_after"`
		HandleInvalid []string        `json:"handle_invalid"`
		BadPowerState []string        `json:"bad_power_state"`
		ParamCount    []string        `json:"param_count"`
		AfterLogout   json.RawMessage `json:"after_logout"`
		VIFs          bool            `json:"vifs"`
		VIFAttached   bool            `json:"vif_attached"`
		FreeRunning   []string        `json:"free_running"`
		SuspendImage  []string        `json:"suspend_image"`
		FreeSuspended []string        `json:"free_suspended"`
		Resumed       []string        `json:"resumed"`
	}
	if err := json.Unmarshal(stdout, &got); err != nil {
		t.Fatalf("output %q: %v", stdout, err)
	}
	check := func(what string, got, want any) {
		t.Helper()
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s = %#v, want %#v", what, got, want)
		}
	}
	check("API version", got.APIVersion, "2.21")
	check("VMs", got.VMs, [][]any{
		{"Control domain on host: host1", "Running", true, "4294967296"},
		{"Control domain on host: host2", "Running", true, "4294967296"},
		{"py-halted", "Halted", false, "536870912"},
		{"py-running", "Running", false, "1073741824"},
	})
	check("vm ref", got.VMRef, running.Ref)
	check("task is a ref", got.TaskIsRef, true)
	check("task status", got.TaskStatus, "success")
	check("task progress", got.TaskProgress, 1.0)
	check("task result", got.TaskResult, "<value></value>")
	check("task error_info", got.TaskErrorInfo, []string{})
	check("power state after", got.PowerAfter, "Halted")
	check("HANDLE_INVALID", got.HandleInvalid, []string{"HANDLE_INVALID", "VM", "OpaqueRef:bad"})
	check("VM_BAD_POWER_STATE", got.BadPowerState, []string{"VM_BAD_POWER_STATE", running.Ref, "running", "halted"})
	check("MESSAGE_PARAMETER_COUNT_MISMATCH", got.ParamCount, []string{"MESSAGE_PARAMETER_COUNT_MISMATCH", "VM.get_record", "1", "0"})
	free := func(running ...int64) []string {
		n := int64(xenapitest.DefaultHostMemory - 4<<30) // the control domain
		for _, m := range running {
			n -= m
		}
		v := strconv.FormatInt(n, 10)
		return []string{v, v}
	}
	check("VIF on the VM", got.VIFs, true)
	check("VIF attached while running", got.VIFAttached, true)
	check("free memory, py-halted running", got.FreeRunning, free(512<<20)) // py-running is shut down by then
	check("suspend image", got.SuspendImage, []string{"Suspended", "suspend", "536870912"})
	check("free memory, py-halted suspended", got.FreeSuspended, free())
	check("resumed", got.Resumed, []string{"Running", "OpaqueRef:NULL"})
	var after map[string]any
	if err := json.Unmarshal(got.AfterLogout, &after); err != nil {
		t.Fatal(err)
	}
	check("after logout", after, map[string]any{"Status": "Failure", "ErrorDescription": []any{"SESSION_INVALID", got.Handle}})

	// The pool saw what the client did.
	for _, m := range []string{"session.login_with_password", "pool.get_all", "pool.get_master", "host.get_API_version_major", "VM.get_all_records", "Async.VM.clean_shutdown", "task.destroy", "session.logout"} {
		if p.CallCount(m) == 0 {
			t.Errorf("the pool never got %s", m)
		}
	}
}

type oracleErr struct {
	out string
	err error
}

func (e *oracleErr) Error() string { return e.err.Error() + ": " + strings.TrimSpace(e.out) }
