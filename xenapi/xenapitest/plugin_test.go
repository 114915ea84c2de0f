package xenapitest

import (
	"context"
	"errors"
	"testing"
)

func TestCallPlugin(t *testing.T) {
	p := newTestPool(t, Options{Hosts: 2})
	s := login(t, p)
	h2 := p.Hosts()[1]
	p.RegisterPlugin("dom0_plugin_version.py", func(ctx context.Context, h *Host, fn string, args map[string]string) (string, error) {
		switch fn {
		case "get_version":
			return "2.1 on " + h.Name(), nil
		case "fail":
			return "", errors.New("boom")
		case "xenapi":
			return "", &Failure{Code: "VDI_MISSING", Params: []string{args["sr"], args["vdi"]}}
		}
		return "", errors.New("no such function")
	})
	got := mustCall(t, p, "host.call_plugin", s, h2.Ref(), "dom0_plugin_version.py", "get_version", map[string]any{})
	if got != "2.1 on "+h2.Name() {
		t.Fatalf("got %v", got)
	}
	_, err := p.Call(context.Background(), "host.call_plugin", s, h2.Ref(), "dom0_plugin_version.py", "fail", map[string]any{})
	wantFailure(t, err, ErrXenAPIPluginFailure, "fail", "Exception", "boom")
	_, err = p.Call(context.Background(), "host.call_plugin", s, h2.Ref(), "dom0_plugin_version.py", "xenapi", map[string]any{"sr": "a", "vdi": "b"})
	wantFailure(t, err, ErrVDIMissing, "a", "b")
	_, err = p.Call(context.Background(), "host.call_plugin", s, h2.Ref(), "migration.py", "transfer_vhd", map[string]any{})
	wantFailure(t, err, ErrXenAPIMissingPlugin, "migration.py")
	_, err = p.Call(context.Background(), "host.call_plugin", s, "OpaqueRef:x", "migration.py", "transfer_vhd", map[string]any{})
	wantFailure(t, err, ErrHandleInvalid, "host", "OpaqueRef:x")
	task := mustCall(t, p, "Async.host.call_plugin", s, h2.Ref(), "dom0_plugin_version.py", "get_version", map[string]any{}).(string)
	if rec := waitTask(t, p, s, task); rec["result"] != "<value>2.1 on "+h2.Name()+"</value>" {
		t.Fatalf("task %v", rec)
	}
}
