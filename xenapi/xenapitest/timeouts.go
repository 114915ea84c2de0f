package xenapitest

import (
	"io"
	"net/http"
	"time"
)

// Defaults of HTTPTimeouts.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultBodyTimeout       = time.Minute
	DefaultIdleTimeout       = 2 * time.Minute
)

// HTTPTimeouts bound how long the pool's HTTP endpoints wait for a client,
// so that a client that stalls cannot hold a connection for ever. Zero
// fields take the defaults.
type HTTPTimeouts struct {
	// ReadHeader bounds reading a request's line and headers (Serve's
	// servers).
	ReadHeader time.Duration
	// Body bounds reading an XML-RPC request's body (at most 300 KiB),
	// and for the disk handlers any pause of the stream: the time between
	// two reads of an import's body or two writes of an export.
	Body time.Duration
	// Idle bounds how long a kept-alive connection waits for its next
	// request (Serve's servers).
	Idle time.Duration
}

func (t HTTPTimeouts) orDefault() HTTPTimeouts {
	if t.ReadHeader <= 0 {
		t.ReadHeader = DefaultReadHeaderTimeout
	}
	if t.Body <= 0 {
		t.Body = DefaultBodyTimeout
	}
	if t.Idle <= 0 {
		t.Idle = DefaultIdleTimeout
	}
	return t
}

// stallReader moves the connection's read deadline before every read, so
// a body may take as long as it keeps coming.
type stallReader struct {
	r  io.Reader
	rc *http.ResponseController
	d  time.Duration
}

func (s stallReader) Read(p []byte) (int, error) {
	_ = s.rc.SetReadDeadline(time.Now().Add(s.d)) // unsupported by test recorders: no deadline then
	return s.r.Read(p)
}

// stallWriter moves the connection's write deadline before every write.
type stallWriter struct {
	w  io.Writer
	rc *http.ResponseController
	d  time.Duration
}

func (s stallWriter) Write(p []byte) (int, error) {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.d))
	return s.w.Write(p)
}
