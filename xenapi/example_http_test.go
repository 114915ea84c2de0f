package xenapi_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"

	"github.com/xenflow/xenflow/xenapi"
	"github.com/xenflow/xenflow/xenapi/xenapitest"
)

// Read a VDI through xapi's /export_raw_vdi handler with the client's
// session. Here a stand-in handler next to the simulated pool's XML-RPC
// endpoint answers; a real pool streams the disk, after a 302 to a host
// that sees the SR if need be.
func ExampleClient_DoHTTP() {
	pool, err := xenapitest.NewPool(xenapitest.Options{})
	if err != nil {
		log.Fatal(err)
	}
	defer pool.Close()
	mux := http.NewServeMux()
	mux.Handle("/", pool.Handler())
	standIn := func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if q.Get("session_id") == "" {
			http.Error(w, "no session", http.StatusUnauthorized)
			return
		}
		if q.Get("vdi") != "OpaqueRef:disk" {
			http.Error(w, "VDI not found", http.StatusNotFound)
			return
		}
		if r.Method == http.MethodPut {
			n, _ := io.Copy(io.Discard, r.Body)
			fmt.Fprintf(w, "%d bytes into %s (Content-Length %d)", n, q.Get("vdi"), r.ContentLength)
			return
		}
		fmt.Fprintf(w, "%s of %s", q.Get("format"), q.Get("vdi"))
	}
	mux.HandleFunc("/export_raw_vdi", standIn)
	mux.HandleFunc("/import_raw_vdi", standIn)
	srv := httptest.NewServer(mux)
	defer srv.Close()

	ctx := context.Background()
	c, err := xenapi.NewClient(srv.URL)
	if err != nil {
		log.Fatal(err)
	}
	if err := c.Login(ctx, pool.User(), pool.Password(), "example"); err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	resp, err := c.DoHTTP(ctx, xenapi.HTTPRequest{
		Method: http.MethodGet,
		Path:   "/export_raw_vdi",
		Query:  url.Values{"vdi": {"OpaqueRef:disk"}, "format": {"vhd"}},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(readAll(resp))

	// An upload names its length: xapi refuses chunked VHD imports.
	disk := strings.NewReader("…VHD bytes…")
	resp, err = c.DoHTTP(ctx, xenapi.HTTPRequest{
		Method:        http.MethodPut,
		Path:          "/import_raw_vdi",
		Query:         url.Values{"vdi": {"OpaqueRef:disk"}, "format": {"vhd"}},
		Body:          disk,
		ContentLength: int64(disk.Len()),
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(readAll(resp))

	// A status other than 2xx is an *HTTPError.
	_, err = c.DoHTTP(ctx, xenapi.HTTPRequest{Method: http.MethodGet, Path: "/export_raw_vdi",
		Query: url.Values{"vdi": {"OpaqueRef:other"}}})
	var he *xenapi.HTTPError
	if errors.As(err, &he) {
		fmt.Println(he.Method, he.Path, he.Status)
	}
	// Output:
	// vhd of OpaqueRef:disk
	// 15 bytes into OpaqueRef:disk (Content-Length 15)
	// GET /export_raw_vdi 404
}

// readAll reads and closes a response body.
func readAll(resp *http.Response) string {
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		log.Fatal(err)
	}
	return string(b)
}
