package quota

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"
)

func TestLogging(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	clock := newFakeClock()
	l := newTestLedger(t, clock, WithLogger(slog.New(slog.NewTextHandler(&buf, nil))), WithMaxAge(time.Minute))
	id, err := l.Reserve(ctx, "p", "u", Deltas{RAM: -10})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1}); err != nil {
		t.Fatal(err)
	}
	clock.Advance(time.Minute)
	if _, err := l.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reconcile(ctx, "p", []Charge{{User: "u", Amount: Amounts{Instances: 1}}}); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	for _, want := range []string{
		"level=WARN msg=\"quota: commit clamped usage at zero\" reservation=r-1/p unders=ram",
		"level=INFO msg=\"quota: reservation expired\" reservation=r-2/p",
		"level=WARN msg=\"quota: usage drift corrected\" project=p user=\"\" resource=instances field=in_use recorded=0 counted=1",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("log lacks %q:\n%s", want, out)
		}
	}
	// Silent by default.
	quiet := newTestLedger(t, clock)
	if quiet.log.Enabled(ctx, slog.LevelError) {
		t.Error("default logger is enabled")
	}
}
