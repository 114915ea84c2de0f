package xenapi_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// TestDoHTTPCopiesADiskAcrossHosts exports a VHD through the master and
// imports it onto a VDI of the second host: the master redirects the PUT
// (302) to that host, DoHTTP follows, and the data arrives.
func TestDoHTTPCopiesADiskAcrossHosts(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 2)
	c := tp.client(t)
	src := tp.vms[1].VDIs[0]
	if err := tp.WriteVDI(src, 3<<20, []byte("guest data")); err != nil {
		t.Fatal(err)
	}
	dst, err := c.VDI.Create(ctx, xenapi.VDIRecord{NameLabel: "copy", SR: xenapi.SRRef(tp.Hosts()[1].SR()),
		VirtualSize: 8 << 20, Type: xenapi.VDITypeUser})
	if err != nil {
		t.Fatal(err)
	}
	stream := get(t, c, "/export_raw_vdi", url.Values{"vdi": {src}, "format": {"vhd"}})
	tp.ResetCalls()
	resp, err := c.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodPut, Path: "/import_raw_vdi",
		Query: url.Values{"vdi": {string(dst)}, "format": {"vhd"}}, Body: bytes.NewReader(stream), ContentLength: int64(len(stream))})
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	got := make([]byte, 10)
	if err := tp.ReadVDIAt(string(dst), got, 3<<20); err != nil || string(got) != "guest data" {
		t.Fatalf("imported %q, %v", got, err)
	}
	var hosts []string
	for _, call := range tp.Calls() {
		if call.Method == xenapitest.ImportRawVDIAction {
			hosts = append(hosts, call.Host)
		}
	}
	if len(hosts) != 2 || hosts[0] != tp.Master().Name() || hosts[1] != tp.Hosts()[1].Name() {
		t.Fatalf("import reached hosts %v, want the master then %s\n%s", hosts, tp.Hosts()[1].Name(), tp.CallsSummary())
	}
}

// TestDoHTTPLogsInAgainAgainstPool: a session xapi no longer knows gets
// 401 from the disk handlers; DoHTTP logs in again and repeats.
func TestDoHTTPLogsInAgainAgainstPool(t *testing.T) {
	ctx := context.Background()
	tp := newTestPool(t, 1)
	c := tp.client(t)
	old := c.Session()
	if _, err := tp.Call(ctx, "session.logout", string(old)); err != nil {
		t.Fatal(err)
	}
	stream := get(t, c, "/export_raw_vdi", url.Values{"vdi": {tp.vms[0].VDIs[0]}, "format": {"raw"}})
	if len(stream) != 8<<20 || c.Session() == old || c.Session() == "" {
		t.Fatalf("%d bytes, session %s (was %s)", len(stream), c.Session(), old)
	}
	// Unknown formats are xapi's 404, as an *HTTPError.
	_, err := c.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi",
		Query: url.Values{"vdi": {tp.vms[0].VDIs[0]}, "format": {"zip"}}})
	var he *xenapi.HTTPError
	if !errors.As(err, &he) || he.Status != http.StatusNotFound || !strings.Contains(err.Error(), "/export_raw_vdi") {
		t.Fatalf("got %v", err)
	}
}

// get runs a GET through DoHTTP and returns the body.
func get(t *testing.T, c *xenapi.Client, path string, q url.Values) []byte {
	t.Helper()
	resp, err := c.DoHTTP(context.Background(), xenapi.HTTPRequest{Method: http.MethodGet, Path: path, Query: q})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
