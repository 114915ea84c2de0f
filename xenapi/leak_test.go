package xenapi

import (
	"context"
	"net/http"
	"runtime"
	"testing"
	"time"
)

// TestNoGoroutineLeak makes calls that time out against a hanging server,
// calls that fail to decode and calls that succeed, then closes everything
// and checks that the goroutine count comes back to where it started.
func TestNoGoroutineLeak(t *testing.T) {
	before := runtime.NumGoroutine()
	func() {
		f := newFakeXapi(t)
		hang := make(chan struct{})
		defer close(hang)
		f.handleRaw("VM.get_all", func(w http.ResponseWriter, r *http.Request) {
			select {
			case <-hang:
			case <-r.Context().Done():
			}
		})
		f.handleRaw("VM.get_uuid", func(w http.ResponseWriter, r *http.Request) {
			_, _ = w.Write([]byte("<methodResponse><params><param><value><struct>"))
		})
		f.handle("VM.get_domid", func([]any) (any, []string) { return "1", nil })
		c := f.login(t, WithCallTimeout(20*time.Millisecond))
		// The calls that must succeed go through a client without the
		// short call timeout, which a loaded machine may exceed.
		c2 := f.login(t)
		for i := 0; i < 10; i++ {
			ctx, cancel := context.WithTimeout(bg(), 10*time.Millisecond)
			if _, err := c.VM.GetAll(ctx); err == nil {
				t.Error("hanging call returned")
			}
			cancel()
			if _, err := c.VM.GetAll(bg()); err == nil {
				t.Error("hanging call returned despite the call timeout")
			}
			if _, err := c2.VM.GetUUID(bg(), "x"); err == nil {
				t.Error("truncated body accepted")
			}
			if _, err := c2.VM.GetDomid(bg(), "x"); err != nil {
				t.Error(err)
			}
		}
		for _, cl := range []*Client{c, c2} {
			if err := cl.Close(bg()); err != nil {
				t.Error(err)
			}
		}
		f.srv.CloseClientConnections()
		f.srv.Close()
	}()
	deadline := time.Now().Add(5 * time.Second)
	for {
		n := runtime.NumGoroutine()
		if n <= before {
			return
		}
		if time.Now().After(deadline) {
			buf := make([]byte, 1<<16)
			t.Fatalf("%d goroutines before, %d after:\n%s", before, n, buf[:runtime.Stack(buf, true)])
		}
		time.Sleep(20 * time.Millisecond)
	}
}
