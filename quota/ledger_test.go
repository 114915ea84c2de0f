package quota

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// TestResizeLifecycle drives Nova's resize quota lifecycle (nova/compute/api.py
// resize, nova/compute/manager.py finish_resize, confirm and revert) through the
// ledger: reserve at resize, commit at finish_resize (the instance is then
// charged max(old, new) in VERIFY_RESIZE), then a reservation at confirm or
// revert committed when it finishes. After every step a recount of the
// instance's charge finds no drift.
func TestResizeLifecycle(t *testing.T) {
	small := Flavor{VCPUs: 2, MemoryMB: 4096}
	wide := Flavor{VCPUs: 4, MemoryMB: 2048}
	big := Flavor{VCPUs: 8, MemoryMB: 8192}
	tests := []struct {
		name       string
		oldF, newF Flavor
		path       string // "confirm" or "revert"
		atResize   Deltas // reserved by the resize
		verify     Amounts
		atSettle   Deltas // reserved by the confirm or revert
		final      Amounts
	}{
		{
			name: "worked example confirmed", oldF: small, newF: wide, path: "confirm",
			atResize: Deltas{Cores: 2},
			verify:   Amounts{Instances: 1, Cores: 4, RAM: 4096},
			atSettle: Deltas{RAM: -2048},
			final:    Amounts{Instances: 1, Cores: 4, RAM: 2048},
		},
		{
			name: "worked example reverted", oldF: small, newF: wide, path: "revert",
			atResize: Deltas{Cores: 2},
			verify:   Amounts{Instances: 1, Cores: 4, RAM: 4096},
			atSettle: Deltas{Cores: -2},
			final:    Amounts{Instances: 1, Cores: 2, RAM: 4096},
		},
		{
			name: "upsize confirmed", oldF: small, newF: big, path: "confirm",
			atResize: Deltas{Cores: 6, RAM: 4096},
			verify:   Amounts{Instances: 1, Cores: 8, RAM: 8192},
			atSettle: Deltas{},
			final:    Amounts{Instances: 1, Cores: 8, RAM: 8192},
		},
		{
			name: "upsize reverted", oldF: small, newF: big, path: "revert",
			atResize: Deltas{Cores: 6, RAM: 4096},
			verify:   Amounts{Instances: 1, Cores: 8, RAM: 8192},
			atSettle: Deltas{Cores: -6, RAM: -4096},
			final:    Amounts{Instances: 1, Cores: 2, RAM: 4096},
		},
		{
			name: "downsize confirmed", oldF: big, newF: small, path: "confirm",
			atResize: Deltas{},
			verify:   Amounts{Instances: 1, Cores: 8, RAM: 8192},
			atSettle: Deltas{Cores: -6, RAM: -4096},
			final:    Amounts{Instances: 1, Cores: 2, RAM: 4096},
		},
		{
			// Reverting a downsize needs no delta: the old size was
			// never released.
			name: "downsize reverted", oldF: big, newF: small, path: "revert",
			atResize: Deltas{},
			verify:   Amounts{Instances: 1, Cores: 8, RAM: 8192},
			atSettle: Deltas{},
			final:    Amounts{Instances: 1, Cores: 8, RAM: 8192},
		},
		{
			name: "cold migrate", oldF: wide, newF: wide, path: "confirm",
			atResize: Deltas{},
			verify:   Amounts{Instances: 1, Cores: 4, RAM: 2048},
			atSettle: Deltas{},
			final:    Amounts{Instances: 1, Cores: 4, RAM: 2048},
		},
	}
	ctx := context.Background()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			clock := newFakeClock()
			l := newTestLedger(t, clock)
			const p, u = "p1", "alice"
			if err := l.SetLimits(ctx, p, Limits{Cores: 10, RAM: 10240}); err != nil {
				t.Fatal(err)
			}
			noDrift := func(step string, c Charge) {
				t.Helper()
				d, err := l.Reconcile(ctx, p, []Charge{c})
				if err != nil {
					t.Fatal(err)
				}
				if len(d) != 0 {
					t.Errorf("%s: drift %v", step, d)
				}
			}
			// Boot the instance.
			boot := InstanceCharge(u, tc.oldF)
			id, err := l.Reserve(ctx, p, u, boot.Amount.Deltas())
			if err != nil {
				t.Fatal(err)
			}
			if err := l.Commit(ctx, id); err != nil {
				t.Fatal(err)
			}
			noDrift("booted", boot)

			// API resize: reserve the upsize delta.
			up := UpsizeDelta(tc.newF, tc.oldF)
			if diff := cmp.Diff(tc.atResize, up); diff != "" {
				t.Fatalf("upsize delta (-want +got):\n%s", diff)
			}
			upID, err := l.Reserve(ctx, p, u, up)
			if err != nil {
				t.Fatal(err)
			}
			us := mustUsage(t, l, p)
			wantReserved, _ := up.Amounts()
			if us.Total.Reserved != wantReserved || us.Users[u].Reserved != wantReserved {
				t.Errorf("reserved after resize = %v / user %v, want %v", us.Total.Reserved, us.Users[u].Reserved, wantReserved)
			}
			if us.Total.InUse != boot.Amount {
				t.Errorf("in_use after reserve = %v, want unchanged %v", us.Total.InUse, boot.Amount)
			}
			noDrift("resize reserved", boot)

			// finish_resize on the destination commits it: VERIFY_RESIZE
			// is charged max(old, new).
			if err := l.Commit(ctx, upID); err != nil {
				t.Fatal(err)
			}
			us = mustUsage(t, l, p)
			if us.Total.InUse != tc.verify || us.Users[u].InUse != tc.verify {
				t.Errorf("VERIFY_RESIZE charge = %v, want %v", us.Total.InUse, tc.verify)
			}
			if us.Total.Reserved != (Amounts{}) {
				t.Errorf("reserved in VERIFY_RESIZE = %v, want 0", us.Total.Reserved)
			}
			if got := ResizeCharge(u, tc.oldF, tc.newF).Amount; got != tc.verify {
				t.Errorf("ResizeCharge = %v, want %v", got, tc.verify)
			}
			noDrift("verify_resize", ResizeCharge(u, tc.oldF, tc.newF))

			var settle Deltas
			var finalCharge Charge
			if tc.path == "confirm" {
				settle = DownsizeDelta(tc.newF, tc.oldF)
				finalCharge = InstanceCharge(u, tc.newF)
			} else {
				settle = ReverseUpsizeDelta(tc.newF, tc.oldF)
				finalCharge = InstanceCharge(u, tc.oldF)
			}
			if diff := cmp.Diff(tc.atSettle, settle); diff != "" {
				t.Fatalf("%s delta (-want +got):\n%s", tc.path, diff)
			}
			sID, err := l.Reserve(ctx, p, u, settle)
			if err != nil {
				t.Fatal(err)
			}
			// Negative deltas do not change reserved or in_use until commit.
			us = mustUsage(t, l, p)
			if us.Total.InUse != tc.verify || us.Total.Reserved != (Amounts{}) {
				t.Errorf("after %s reserve: in_use %v reserved %v", tc.path, us.Total.InUse, us.Total.Reserved)
			}
			if err := l.Commit(ctx, sID); err != nil {
				t.Fatal(err)
			}
			us = mustUsage(t, l, p)
			if us.Total.InUse != tc.final || us.Users[u].InUse != tc.final {
				t.Errorf("after %s = %v, want %v", tc.path, us.Total.InUse, tc.final)
			}
			if us.Total.InUse != finalCharge.Amount {
				t.Errorf("after %s = %v, want the charge of the flavor kept %v", tc.path, us.Total.InUse, finalCharge.Amount)
			}
			noDrift("settled", finalCharge)
			if us.Pending != 0 {
				t.Errorf("%d reservations left pending", us.Pending)
			}
		})
	}
}

func TestOverQuota(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, newFakeClock())
	const p = "p1"
	if err := l.SetLimits(ctx, p, Limits{Instances: 5, Cores: 20, RAM: 8192}); err != nil {
		t.Fatal(err)
	}
	if err := l.SetUserLimits(ctx, p, "bob", Limits{Cores: 4}); err != nil {
		t.Fatal(err)
	}
	id, err := l.Reserve(ctx, p, "alice", Deltas{Instances: 1, Cores: 16, RAM: 4096})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	held, err := l.Reserve(ctx, p, "alice", Deltas{Cores: 2})
	if err != nil {
		t.Fatal(err)
	}
	before := mustUsage(t, l, p)

	// Project: cores 16 in use + 2 reserved + 4 > 20; RAM fits, but
	// nothing may be reserved.
	_, err = l.Reserve(ctx, p, "alice", Deltas{Cores: 4, RAM: 1024, Instances: -1})
	var oq *OverQuotaError
	if !errors.As(err, &oq) || !errors.Is(err, ErrOverQuota) {
		t.Fatalf("error = %v, want *OverQuotaError", err)
	}
	want := []Over{{Resource: Cores, Scope: ScopeProject, Requested: 4, Limit: 20, InUse: 16, Reserved: 2, Headroom: 2}}
	if diff := cmp.Diff(want, oq.Overs); diff != "" {
		t.Errorf("overs (-want +got):\n%s", diff)
	}
	if oq.Project != p || oq.User != "alice" {
		t.Errorf("error names %q/%q", oq.Project, oq.User)
	}
	if got := oq.Overs[0].Used(); got != 18 {
		t.Errorf("Used = %d, want 18", got)
	}
	msg := err.Error()
	for _, s := range []string{"cores", "requested 4", "already used 18 of 20", "headroom 2"} {
		if !strings.Contains(msg, s) {
			t.Errorf("message %q lacks %q", msg, s)
		}
	}

	// User bob: limit 4 cores; project headroom 2, user headroom 4. Both
	// RAM (project) and cores (project and user) over.
	_, err = l.Reserve(ctx, p, "bob", Deltas{Cores: 5, RAM: 8192})
	if !errors.As(err, &oq) {
		t.Fatalf("error = %v, want *OverQuotaError", err)
	}
	want = []Over{
		{Resource: Cores, Scope: ScopeProject, Requested: 5, Limit: 20, InUse: 16, Reserved: 2, Headroom: 2},
		{Resource: Cores, Scope: ScopeUser, Requested: 5, Limit: 4, Headroom: 4},
		{Resource: RAM, Scope: ScopeProject, Requested: 8192, Limit: 8192, InUse: 4096, Headroom: 4096},
	}
	if diff := cmp.Diff(want, oq.Overs); diff != "" {
		t.Errorf("overs (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff([]Resource{Cores, RAM}, oq.Resources()); diff != "" {
		t.Errorf("Resources (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[Resource]int64{Cores: 2, RAM: 4096}, oq.Headroom()); diff != "" {
		t.Errorf("Headroom (-want +got):\n%s", diff)
	}
	if after := mustUsage(t, l, p); !cmp.Equal(before, after) {
		t.Errorf("refused reservations changed usage:\n%s", cmp.Diff(before, after))
	}
	// Headroom from the snapshot agrees.
	if h := before.Headroom("alice", Cores); h != 2 {
		t.Errorf("snapshot headroom = %d, want 2", h)
	}
	if h := before.Headroom("bob", Cores); h != 2 {
		t.Errorf("snapshot headroom for bob = %d, want 2 (project bound)", h)
	}
	// Unlimited never refuses; releasing makes room.
	if err := l.Rollback(ctx, held); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, p, "bob", Deltas{Cores: 4}); err != nil {
		t.Errorf("reserve within limits after rollback: %v", err)
	}
	if err := l.SetLimits(ctx, p, Limits{Cores: Unlimited}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.Reserve(ctx, p, "alice", Deltas{Cores: 1 << 40}); err != nil {
		t.Errorf("unlimited refused: %v", err)
	}
	if _, err := l.Reserve(ctx, p, "bob", Deltas{Cores: 1}); !errors.Is(err, ErrOverQuota) {
		t.Errorf("user limit not enforced under an unlimited project: %v", err)
	}
}

// TestBadInput checks that every bad request returns its typed error and
// leaves usage and reservations as they were.
func TestBadInput(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	l := newTestLedger(t, clock, WithMaxAge(time.Hour), WithRetention(24*time.Hour))
	const p = "p1"
	if err := l.SetLimits(ctx, p, Limits{Cores: 10}); err != nil {
		t.Fatal(err)
	}
	reserve := func(d Deltas) string {
		t.Helper()
		id, err := l.Reserve(ctx, p, "u", d)
		if err != nil {
			t.Fatal(err)
		}
		return id
	}
	committed := reserve(Deltas{Cores: 2, Instances: 1})
	if err := l.Commit(ctx, committed); err != nil {
		t.Fatal(err)
	}
	rolled := reserve(Deltas{Cores: 1})
	if err := l.Rollback(ctx, rolled); err != nil {
		t.Fatal(err)
	}
	expired := reserve(Deltas{Cores: 3})
	clock.Advance(2 * time.Hour)
	if ids, err := l.Expire(ctx); err != nil || len(ids) != 1 || ids[0] != expired {
		t.Fatalf("Expire = %v, %v; want [%s]", ids, err, expired)
	}
	pending := reserve(Deltas{Cores: 4})

	tests := []struct {
		name string
		do   func() error
		want error
	}{
		{"limit below -1", func() error { return l.SetLimits(ctx, p, Limits{Cores: -2}) }, ErrInvalidLimit},
		{"limit too large", func() error { return l.SetLimits(ctx, p, Limits{Cores: MaxAmount + 1}) }, ErrInvalidLimit},
		{"limit of unknown resource", func() error { return l.SetLimits(ctx, p, Limits{Resource(7): 1}) }, ErrUnknownResource},
		{"user limit below -1", func() error { return l.SetUserLimits(ctx, p, "u", Limits{RAM: -5}) }, ErrInvalidLimit},
		{"user limit empty user", func() error { return l.SetUserLimits(ctx, p, "", Limits{RAM: 5}) }, ErrEmptyUser},
		{"limits empty project", func() error { return l.SetLimits(ctx, "", Limits{RAM: 5}) }, ErrEmptyProject},
		{"reserve empty project", func() error { _, err := l.Reserve(ctx, "", "u", Deltas{Cores: 1}); return err }, ErrEmptyProject},
		{"reserve unknown resource", func() error { _, err := l.Reserve(ctx, p, "u", Deltas{Resource(4): 1}); return err }, ErrUnknownResource},
		{"reserve huge delta", func() error { _, err := l.Reserve(ctx, p, "u", Deltas{RAM: MaxAmount + 1}); return err }, ErrInvalidDelta},
		{"reserve huge negative", func() error { _, err := l.Reserve(ctx, p, "u", Deltas{RAM: -MaxAmount - 1}); return err }, ErrInvalidDelta},
		{"reserve over quota", func() error { _, err := l.Reserve(ctx, p, "u", Deltas{Cores: 5}); return err }, ErrOverQuota},
		{"commit unknown id", func() error { return l.Commit(ctx, "r-999/"+p) }, ErrUnknownReservation},
		{"commit id of unknown project", func() error { return l.Commit(ctx, "r-1/nowhere") }, ErrUnknownReservation},
		{"commit malformed id", func() error { return l.Commit(ctx, "garbage") }, ErrUnknownReservation},
		{"commit empty id", func() error { return l.Commit(ctx, "") }, ErrUnknownReservation},
		{"commit id without project", func() error { return l.Commit(ctx, "r-1/") }, ErrUnknownReservation},
		{"rollback unknown id", func() error { return l.Rollback(ctx, "/"+p) }, ErrUnknownReservation},
		{"commit expired", func() error { return l.Commit(ctx, expired) }, ErrReservationExpired},
		{"rollback expired", func() error { return l.Rollback(ctx, expired) }, ErrReservationExpired},
		{"rollback after commit", func() error { return l.Rollback(ctx, committed) }, ErrAlreadyCommitted},
		{"commit after rollback", func() error { return l.Commit(ctx, rolled) }, ErrAlreadyRolledBack},
		{"reconcile empty project", func() error { _, err := l.Reconcile(ctx, "", nil); return err }, ErrEmptyProject},
		{"reconcile negative charge", func() error {
			_, err := l.Reconcile(ctx, p, []Charge{{User: "u", Amount: Amounts{Cores: -1}}})
			return err
		}, ErrInvalidDelta},
		{"reconcile huge charge", func() error {
			_, err := l.Reconcile(ctx, p, []Charge{{User: "u", Amount: Amounts{Cores: MaxAmount + 1}}})
			return err
		}, ErrInvalidDelta},
		{"usage empty project", func() error { _, err := l.Usage(ctx, ""); return err }, ErrEmptyProject},
		{"get unknown reservation", func() error { _, err := l.Reservation(ctx, "r-77/"+p); return err }, ErrUnknownReservation},
		{"get reservation of unknown project", func() error { _, err := l.Reservation(ctx, "r-77/zz"); return err }, ErrUnknownReservation},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := mustUsage(t, l, p)
			err := tc.do()
			if !errors.Is(err, tc.want) {
				t.Fatalf("error = %v, want %v", err, tc.want)
			}
			if after := mustUsage(t, l, p); !cmp.Equal(before, after) {
				t.Errorf("usage changed:\n%s", cmp.Diff(before, after))
			}
			var ie *InputError
			var re *ReservationError
			var oq *OverQuotaError
			if !errors.As(err, &ie) && !errors.As(err, &re) && !errors.As(err, &oq) {
				t.Errorf("error %T is not one of the package's typed errors", err)
			}
		})
	}
	// The states a resumed flow sees.
	for id, want := range map[string]State{committed: Committed, rolled: RolledBack, expired: Expired, pending: Pending} {
		r, err := l.Reservation(ctx, id)
		if err != nil || r.State != want {
			t.Errorf("Reservation(%s) = %v, %v; want state %v", id, r.State, err, want)
		}
	}
	// Nothing failed left a project behind.
	ps, err := l.store.Projects(ctx)
	if err != nil || !cmp.Equal(ps, []string{p}) {
		t.Errorf("projects = %v, %v; want only %s", ps, err, p)
	}
	// The pending one is still good.
	if err := l.Commit(ctx, pending); err != nil {
		t.Errorf("commit of the pending reservation: %v", err)
	}
	if u := mustUsage(t, l, p); u.Total.InUse[Cores] != 6 || u.Total.Reserved[Cores] != 0 {
		t.Errorf("final cores in_use %d reserved %d, want 6 and 0", u.Total.InUse[Cores], u.Total.Reserved[Cores])
	}
}

func TestNewLedgerOptions(t *testing.T) {
	tests := []struct {
		name string
		opt  Option
		want error
	}{
		{"zero max age", WithMaxAge(0), ErrInvalidOption},
		{"negative retention", WithRetention(-time.Second), ErrInvalidOption},
		{"bad default limit", WithDefaultLimits(Limits{RAM: -3}), ErrInvalidLimit},
		{"unknown default resource", WithDefaultLimits(Limits{Resource(200): 3}), ErrUnknownResource},
	}
	for _, tc := range tests {
		if _, err := NewLedger(tc.opt); !errors.Is(err, tc.want) {
			t.Errorf("%s: error = %v, want %v", tc.name, err, tc.want)
		}
	}
	l, err := NewLedger(nil, WithDefaultLimits(Limits{Cores: 3}))
	if err != nil {
		t.Fatal(err)
	}
	u, err := l.Usage(context.Background(), "fresh")
	if err != nil {
		t.Fatal(err)
	}
	want := Amounts{Instances: 10, Cores: 3, RAM: 51200, DiskGB: Unlimited}
	if u.Total.Limit != want {
		t.Errorf("default limits = %v, want %v", u.Total.Limit, want)
	}
	// The default id source makes UUIDs.
	id, err := l.Reserve(context.Background(), "fresh", "u", Deltas{Cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	if gen, p, ok := splitID(id); !ok || len(gen) != 36 || p != "fresh" {
		t.Errorf("id %q is not <uuid>/<project>", id)
	}
}

func TestBadIDSource(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	bad := []IDSource{
		func() (string, error) { return "a/b", nil },
		func() (string, error) { return "", nil },
		func() (string, error) { return "", errors.New("entropy gone") },
	}
	for i, src := range bad {
		l := newTestLedger(t, clock, WithIDs(src))
		if _, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1}); err == nil {
			t.Errorf("source %d: reserve succeeded", i)
		}
		if u := mustUsage(t, l, "p"); u.Total.Reserved != (Amounts{}) {
			t.Errorf("source %d: reserved %v", i, u.Total.Reserved)
		}
	}
	// Two ledgers with the same sequence on one store collide; the second
	// is refused rather than overwriting the first.
	store := NewMemStore()
	a := newTestLedger(t, clock, WithStore(store))
	b := newTestLedger(t, clock, WithStore(store))
	if _, err := a.Reserve(ctx, "p", "u", Deltas{Cores: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Reserve(ctx, "p", "u", Deltas{Cores: 1}); !errors.Is(err, ErrInvalidID) {
		t.Errorf("colliding id: error = %v, want ErrInvalidID", err)
	}
}

func TestRandomIDs(t *testing.T) {
	src := RandomIDs(strings.NewReader(strings.Repeat("\x00", 16) + strings.Repeat("\xff", 16)))
	for _, want := range []string{"00000000-0000-4000-8000-000000000000", "ffffffff-ffff-4fff-bfff-ffffffffffff"} {
		got, err := src()
		if err != nil || got != want {
			t.Errorf("id = %q, %v; want %q", got, err, want)
		}
	}
	if _, err := src(); err == nil {
		t.Error("exhausted reader gave an id")
	}
}

func TestExpiry(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	l := newTestLedger(t, clock, WithRetention(48*time.Hour))
	old, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 2, RAM: 512})
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(23 * time.Hour)
	young, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	if ids, err := l.Expire(ctx); err != nil || len(ids) != 0 {
		t.Fatalf("Expire before max age = %v, %v", ids, err)
	}
	clock.Advance(time.Hour) // old is now exactly DefaultMaxAge old.
	ids, err := l.Expire(ctx)
	if err != nil || !cmp.Equal(ids, []string{old}) {
		t.Fatalf("Expire = %v, %v; want [%s]", ids, err, old)
	}
	u := mustUsage(t, l, "p")
	if u.Total.Reserved != (Amounts{Cores: 1}) || u.Users["u"].Reserved != (Amounts{Cores: 1}) {
		t.Errorf("reserved after expiry = %v / %v, want cores 1", u.Total.Reserved, u.Users["u"].Reserved)
	}
	// A reservation past its age is expired by the commit that finds it,
	// even when Expire has not run.
	clock.Advance(23 * time.Hour)
	if err := l.Commit(ctx, young); !errors.Is(err, ErrReservationExpired) {
		t.Errorf("late commit: %v, want ErrReservationExpired", err)
	}
	if u := mustUsage(t, l, "p"); u.Total != (Counters{Limit: u.Total.Limit}) {
		t.Errorf("usage after late commit = %+v, want zero", u.Total)
	}
	// Settled reservations are forgotten after the retention.
	clock.Advance(48 * time.Hour)
	if _, err := l.Expire(ctx); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, old); !errors.Is(err, ErrUnknownReservation) {
		t.Errorf("commit after retention: %v, want ErrUnknownReservation", err)
	}
	if u := mustUsage(t, l, "p"); u.Total.InUse != (Amounts{}) {
		t.Errorf("usage changed: %v", u.Total.InUse)
	}
}

// TestRetentionZero checks that forgetting settled reservations at once still
// never counts a retried commit twice.
func TestRetentionZero(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, newFakeClock(), WithRetention(0))
	id, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 2})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); !errors.Is(err, ErrUnknownReservation) {
		t.Errorf("retried commit: %v", err)
	}
	if u := mustUsage(t, l, "p"); u.Total.InUse[Cores] != 2 {
		t.Errorf("cores in use %d, want 2", u.Total.InUse[Cores])
	}
}

// TestResumeInAnotherProcess settles, from a second ledger on the same store,
// a reservation whose id an earlier ledger handed out: what a flow resumed
// after a crash does with the id it stored with its migration.
func TestResumeInAnotherProcess(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	store := NewMemStore()
	first := newTestLedger(t, clock, WithStore(store), WithIDs(SequentialIDs("host-a")))
	id, err := first.Reserve(ctx, "p", "u", UpsizeDelta(Flavor{VCPUs: 4, MemoryMB: 2048}, Flavor{VCPUs: 2, MemoryMB: 4096}))
	if err != nil {
		t.Fatal(err)
	}
	second := newTestLedger(t, clock, WithStore(store), WithIDs(SequentialIDs("host-b")))
	if err := second.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	// The first process comes back and retries its step.
	if err := first.Commit(ctx, id); err != nil {
		t.Errorf("retried commit: %v, want success", err)
	}
	if u := mustUsage(t, second, "p"); u.Total.InUse[Cores] != 2 || u.Total.Reserved[Cores] != 0 {
		t.Errorf("cores in_use %d reserved %d, want 2 and 0", u.Total.InUse[Cores], u.Total.Reserved[Cores])
	}
}

func TestReconcileCorrectsDrift(t *testing.T) {
	ctx := context.Background()
	clock := newFakeClock()
	store := NewMemStore()
	l := newTestLedger(t, clock, WithStore(store))
	f := Flavor{VCPUs: 2, MemoryMB: 2048}
	for _, u := range []string{"alice", "bob"} {
		id, err := l.Reserve(ctx, "p", u, InstanceCharge(u, f).Amount.Deltas())
		if err != nil {
			t.Fatal(err)
		}
		if err := l.Commit(ctx, id); err != nil {
			t.Fatal(err)
		}
	}
	pending, err := l.Reserve(ctx, "p", "bob", Deltas{Cores: 2})
	if err != nil {
		t.Fatal(err)
	}
	// Bob's instance went away without a quota commit, and a bug elsewhere
	// wrote a wrong reserved figure.
	err = store.Update(ctx, "p", func(pq *ProjectQuota) error {
		pq.Total.Reserved[RAM] = 999
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	charges := []Charge{InstanceCharge("alice", f)}
	drift, err := l.Reconcile(ctx, "p", charges)
	if err != nil {
		t.Fatal(err)
	}
	want := []Drift{
		{Project: "p", Resource: Instances, Field: "in_use", Recorded: 2, Counted: 1},
		{Project: "p", Resource: Cores, Field: "in_use", Recorded: 4, Counted: 2},
		{Project: "p", Resource: RAM, Field: "in_use", Recorded: 4096, Counted: 2048},
		{Project: "p", Resource: RAM, Field: "reserved", Recorded: 999, Counted: 0},
		{Project: "p", User: "bob", Resource: Instances, Field: "in_use", Recorded: 1, Counted: 0},
		{Project: "p", User: "bob", Resource: Cores, Field: "in_use", Recorded: 2, Counted: 0},
		{Project: "p", User: "bob", Resource: RAM, Field: "in_use", Recorded: 2048, Counted: 0},
	}
	if diff := cmp.Diff(want, drift); diff != "" {
		t.Errorf("drift (-want +got):\n%s", diff)
	}
	if s := drift[0].String(); s != "p instances in_use: recorded 2, counted 1" {
		t.Errorf("Drift.String = %q", s)
	}
	// Corrected: a second pass finds nothing, and the pending reservation
	// still settles.
	if drift, err := l.Reconcile(ctx, "p", charges); err != nil || len(drift) != 0 {
		t.Errorf("second reconcile = %v, %v", drift, err)
	}
	if err := l.Rollback(ctx, pending); err != nil {
		t.Fatal(err)
	}
	if drift, err := l.Reconcile(ctx, "p", charges); err != nil || len(drift) != 0 {
		t.Errorf("reconcile after rollback = %v, %v", drift, err)
	}
}

func TestUnders(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, newFakeClock())
	id, err := l.Reserve(ctx, "p", "u", Deltas{RAM: 1024})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	id, err = l.Reserve(ctx, "p", "u", Deltas{RAM: -4096})
	if err != nil {
		t.Fatalf("negative deltas are never refused: %v", err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	u := mustUsage(t, l, "p")
	if u.Total.InUse[RAM] != 0 || u.Total.Unders[RAM] != 3072 || u.Users["u"].Unders[RAM] != 3072 {
		t.Errorf("in_use %d unders %d/%d, want 0 and 3072", u.Total.InUse[RAM], u.Total.Unders[RAM], u.Users["u"].Unders[RAM])
	}
}

func TestContextCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	l := newTestLedger(t, newFakeClock())
	if _, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1}); !errors.Is(err, context.Canceled) {
		t.Errorf("reserve: %v", err)
	}
	if _, err := l.Expire(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("expire: %v", err)
	}
}

func TestProjectWithSlash(t *testing.T) {
	ctx := context.Background()
	l := newTestLedger(t, newFakeClock())
	const p = "org/team/a"
	id, err := l.Reserve(ctx, p, "u", Deltas{Cores: 3})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	r, err := l.Reservation(ctx, id)
	if err != nil || r.Project != p || r.State != Committed {
		t.Errorf("Reservation = %+v, %v", r, err)
	}
	if u := mustUsage(t, l, p); u.Total.InUse[Cores] != 3 {
		t.Errorf("cores in use %d, want 3", u.Total.InUse[Cores])
	}
}

// TestDefaultIDsUnique reserves from several goroutines with the default id
// source: every id is a fresh version 4 UUID followed by the project.
func TestDefaultIDsUnique(t *testing.T) {
	ctx := context.Background()
	l, err := NewLedger(WithDefaultLimits(Limits{Instances: Unlimited, Cores: Unlimited, RAM: Unlimited}))
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, each = 4, 2000
	ids := make([][]string, goroutines)
	done := make(chan struct{})
	for g := 0; g < goroutines; g++ {
		go func(g int) {
			defer func() { done <- struct{}{} }()
			for i := 0; i < each; i++ {
				id, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
				if err != nil {
					t.Error(err)
					return
				}
				ids[g] = append(ids[g], id)
			}
		}(g)
	}
	for g := 0; g < goroutines; g++ {
		<-done
	}
	seen := map[string]bool{}
	for _, list := range ids {
		for _, id := range list {
			gen, p, ok := splitID(id)
			if !ok || p != "p" || len(gen) != 36 || gen[14] != '4' || !strings.ContainsRune("89ab", rune(gen[19])) {
				t.Fatalf("id %q is not <uuid v4>/p", id)
			}
			if seen[id] {
				t.Fatalf("id %q handed out twice", id)
			}
			seen[id] = true
		}
	}
	if len(seen) != goroutines*each {
		t.Errorf("%d ids, want %d", len(seen), goroutines*each)
	}
	if u := mustUsage(t, l, "p"); u.Pending != goroutines*each || u.Total.Reserved[Cores] != goroutines*each {
		t.Errorf("pending %d reserved %d", u.Pending, u.Total.Reserved[Cores])
	}
}

// TestNilAndZeroValues: a nil or zero Ledger and a nil MemStore answer
// with ErrNotInitialized instead of panicking, a zero MemStore works, and
// RandomIDs(nil) makes ids fail with ErrInvalidOption.
func TestNilAndZeroValues(t *testing.T) {
	ctx := context.Background()
	for name, l := range map[string]*Ledger{"nil": nil, "zero": {}} {
		errs := map[string]error{}
		errs["SetLimits"] = l.SetLimits(ctx, "p", Limits{Cores: 1})
		errs["SetUserLimits"] = l.SetUserLimits(ctx, "p", "u", Limits{Cores: 1})
		_, errs["Reserve"] = l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
		errs["Commit"] = l.Commit(ctx, "x/p")
		errs["Rollback"] = l.Rollback(ctx, "x/p")
		_, errs["Expire"] = l.Expire(ctx)
		_, errs["Reconcile"] = l.Reconcile(ctx, "p", nil)
		_, errs["Usage"] = l.Usage(ctx, "p")
		_, errs["Reservation"] = l.Reservation(ctx, "x/p")
		for op, err := range errs {
			if !errors.Is(err, ErrNotInitialized) {
				t.Errorf("%s ledger %s: %v, want ErrNotInitialized", name, op, err)
			}
		}
	}
	var nilStore *MemStore
	noop := func(*ProjectQuota) error { return nil }
	if err := nilStore.Update(ctx, "p", noop); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("nil MemStore Update: %v", err)
	}
	if err := nilStore.View(ctx, "p", noop); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("nil MemStore View: %v", err)
	}
	if _, err := nilStore.Projects(ctx); !errors.Is(err, ErrNotInitialized) {
		t.Errorf("nil MemStore Projects: %v", err)
	}
	if err := NewMemStore().Update(ctx, "p", nil); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("MemStore Update with nil fn: %v", err)
	}
	// A ledger on a zero MemStore works.
	l, err := NewLedger(WithStore(&MemStore{}))
	if err != nil {
		t.Fatal(err)
	}
	id, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
	if err != nil {
		t.Fatalf("reserve on a zero MemStore: %v", err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatalf("commit on a zero MemStore: %v", err)
	}
	if _, err := RandomIDs(nil)(); !errors.Is(err, ErrInvalidOption) {
		t.Errorf("RandomIDs(nil): %v", err)
	}
}

// TestHugeFlavorsDoNotWrap: flavor fields so large that new − old would
// overflow int64 used to wrap around to a small or negative delta, so a
// huge upsize reserved nothing. The arithmetic now saturates and the
// ledger refuses the delta.
func TestHugeFlavorsDoNotWrap(t *testing.T) {
	ctx := context.Background()
	const maxI, minI = int64(math.MaxInt64), int64(math.MinInt64)
	newF, oldF := Flavor{VCPUs: maxI, MemoryMB: maxI, RootGB: maxI, EphemeralGB: maxI}, Flavor{VCPUs: minI, MemoryMB: minI, RootGB: minI, EphemeralGB: minI}
	up := UpsizeDelta(newF, oldF, WithDisk())
	for _, r := range []Resource{Cores, RAM, DiskGB} {
		if up[r] <= MaxAmount {
			t.Errorf("upsize %s = %d: wrapped instead of saturating", r, up[r])
		}
	}
	down := DownsizeDelta(oldF, newF, WithDisk())
	for _, r := range []Resource{Cores, RAM, DiskGB} {
		if down[r] >= -MaxAmount {
			t.Errorf("downsize %s = %d: wrapped instead of saturating", r, down[r])
		}
	}
	l, err := NewLedger()
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []Deltas{up, down, ReverseUpsizeDelta(newF, oldF)} {
		if _, err := l.Reserve(ctx, "p", "u", d); !errors.Is(err, ErrInvalidDelta) {
			t.Errorf("reserve %v: %v, want ErrInvalidDelta", d, err)
		}
	}
	c := ResizeCharge("u", oldF, newF, WithDisk())
	if _, err := l.Reconcile(ctx, "p", []Charge{c}); !errors.Is(err, ErrInvalidDelta) {
		t.Errorf("reconcile with a huge charge: %v, want ErrInvalidDelta", err)
	}
}

// TestCorruptSettledState: a store that hands back a settled reservation
// with a state no settled reservation has made the ledger index past the
// end of a table and panic; it now reports the reservation unknown.
func TestCorruptSettledState(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	l, err := NewLedger(WithStore(ms))
	if err != nil {
		t.Fatal(err)
	}
	id, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatal(err)
	}
	for _, bad := range []State{Pending, 9, 255} {
		if err := ms.Update(ctx, "p", func(pq *ProjectQuota) error {
			for _, r := range pq.Settled {
				r.State = bad
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if err := l.Commit(ctx, id); !errors.Is(err, ErrUnknownReservation) {
			t.Errorf("commit of a settled reservation in state %d: %v, want ErrUnknownReservation", bad, err)
		}
	}
	if got := State(9).String(); got != "state(?)" {
		t.Errorf("State(9) = %q", got)
	}
}

// TestRecordWithNilMaps: a store that decodes a record may return empty
// maps as nil; writing a user, a pending or a settled reservation into
// them used to panic.
func TestRecordWithNilMaps(t *testing.T) {
	ctx := context.Background()
	ms := NewMemStore()
	l, err := NewLedger(WithStore(ms))
	if err != nil {
		t.Fatal(err)
	}
	if err := l.SetLimits(ctx, "p", Limits{Cores: 10}); err != nil {
		t.Fatal(err)
	}
	nilMaps := func() {
		t.Helper()
		if err := ms.Update(ctx, "p", func(pq *ProjectQuota) error {
			if len(pq.Users)+len(pq.Pending)+len(pq.Settled) == 0 {
				pq.Users, pq.Pending, pq.Settled = nil, nil, nil
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	nilMaps()
	id, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
	if err != nil {
		t.Fatalf("reserve: %v", err)
	}
	if err := l.Commit(ctx, id); err != nil {
		t.Fatalf("commit: %v", err)
	}
	if _, err := l.Expire(ctx); err != nil {
		t.Fatalf("expire: %v", err)
	}
	// Settle into a nil Settled map.
	id2, err := l.Reserve(ctx, "p", "u", Deltas{Cores: 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Update(ctx, "p", func(pq *ProjectQuota) error { pq.Settled = nil; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.Rollback(ctx, id2); err != nil {
		t.Fatalf("rollback into a nil settled map: %v", err)
	}
	u, err := l.Usage(ctx, "p")
	if err != nil || u.Total.InUse[Cores] != 1 || u.Total.Reserved[Cores] != 0 {
		t.Fatalf("usage %+v %v", u, err)
	}
}

// TestSettleRetriedAfterCrash: a process commits (or rolls back) and dies
// before it records that it did; the process that resumes the flow
// retries the same step with the stored id. The retry succeeds and usage
// is counted once.
func TestSettleRetriedAfterCrash(t *testing.T) {
	tests := []struct {
		name                string
		commit              bool
		inUse, reserved     int64
		retries             int
		otherSettleSentinel error // the opposite step after the first one
	}{
		{"commit", true, 2, 0, 3, ErrAlreadyCommitted},
		{"rollback", false, 0, 0, 3, ErrAlreadyRolledBack},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newFakeClock()
			store := NewMemStore()
			crashed := newTestLedger(t, clock, WithStore(store), WithIDs(SequentialIDs("host-a")))
			id, err := crashed.Reserve(ctx, "p", "u", Deltas{Cores: 2})
			if err != nil {
				t.Fatal(err)
			}
			settle := func(l *Ledger, commit bool) error {
				if commit {
					return l.Commit(ctx, id)
				}
				return l.Rollback(ctx, id)
			}
			if err := settle(crashed, tt.commit); err != nil {
				t.Fatal(err)
			}
			resumed := newTestLedger(t, clock, WithStore(store), WithIDs(SequentialIDs("host-b")))
			for i := 0; i < tt.retries; i++ {
				if err := settle(resumed, tt.commit); err != nil {
					t.Fatalf("retry %d: %v, want success", i+1, err)
				}
			}
			u := mustUsage(t, resumed, "p")
			if u.Total.InUse[Cores] != tt.inUse || u.Total.Reserved[Cores] != tt.reserved || u.Users["u"].InUse[Cores] != tt.inUse {
				t.Fatalf("usage %+v, want cores in_use %d reserved %d", u, tt.inUse, tt.reserved)
			}
			if err := settle(resumed, !tt.commit); !errors.Is(err, tt.otherSettleSentinel) {
				t.Fatalf("opposite step: %v, want %v", err, tt.otherSettleSentinel)
			}
			if r, err := resumed.Reservation(ctx, id); err != nil || (r.State == Committed) != tt.commit {
				t.Fatalf("reservation %+v, %v", r, err)
			}
		})
	}
}
