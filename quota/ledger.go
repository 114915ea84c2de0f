package quota

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"strings"
	"sync"
	"time"
)

// Defaults of a Ledger.
const (
	// DefaultMaxAge is how long a reservation may stay pending before it is
	// expired: Nova's reservation_expire, 86400 seconds.
	DefaultMaxAge = 24 * time.Hour
	// DefaultRetention is how long a settled reservation is remembered, so
	// that a retried commit or rollback is told what happened to it.
	DefaultRetention = 7 * 24 * time.Hour
)

// Ledger keeps per-project and per-user limits, usage and reservations, and
// enforces them the way Nova's reservation-era quota engine did, without its
// leaks: every reservation is settled exactly once, by Commit, Rollback or
// expiry, and Reconcile recounts usage from the instances that exist.
//
// A Ledger is safe for concurrent use when its Store is; the default
// MemStore is.
type Ledger struct {
	store     Store
	now       func() time.Time
	ids       IDSource
	maxAge    time.Duration
	retention time.Duration
	defaults  Amounts
	log       *slog.Logger
	txns      sync.Pool // of *txn
}

// Option configures a Ledger.
type Option func(*ledgerConfig)

type ledgerConfig struct {
	store     Store
	now       func() time.Time
	ids       IDSource
	maxAge    time.Duration
	retention time.Duration
	defaults  Limits
	log       *slog.Logger
}

// WithStore sets the store; nil keeps the default, a new MemStore.
func WithStore(s Store) Option { return func(c *ledgerConfig) { c.store = s } }

// WithClock sets the clock the ledger stamps and expires reservations with;
// nil keeps the default, time.Now.
func WithClock(now func() time.Time) Option { return func(c *ledgerConfig) { c.now = now } }

// WithIDs sets the source of reservation ids; nil keeps the default:
// random (version 4) UUIDs from ChaCha8 generators seeded from crypto/rand,
// one generator per in-flight call so that goroutines never share one.
func WithIDs(ids IDSource) Option { return func(c *ledgerConfig) { c.ids = ids } }

// WithMaxAge sets the age at which a pending reservation expires
// (DefaultMaxAge when not given). It must be positive.
func WithMaxAge(d time.Duration) Option { return func(c *ledgerConfig) { c.maxAge = d } }

// WithRetention sets how long settled reservations are remembered
// (DefaultRetention when not given). Zero forgets them at once: a retried
// Commit then gets ErrUnknownReservation instead of success, but still
// never counts twice. It must not be negative.
func WithRetention(d time.Duration) Option { return func(c *ledgerConfig) { c.retention = d } }

// WithDefaultLimits sets the limits a project starts with; resources it does
// not name keep NovaDefaultLimits. Users start Unlimited (bounded by their
// project) until SetUserLimits.
func WithDefaultLimits(l Limits) Option { return func(c *ledgerConfig) { c.defaults = l } }

// WithLogger sets the logger for expiries, unders and drift; nil (the
// default) logs nothing.
func WithLogger(l *slog.Logger) Option { return func(c *ledgerConfig) { c.log = l } }

// NewLedger returns a ledger. Bad options give an error wrapping
// ErrInvalidOption or ErrInvalidLimit.
func NewLedger(opts ...Option) (*Ledger, error) {
	c := ledgerConfig{maxAge: DefaultMaxAge, retention: DefaultRetention}
	for _, o := range opts {
		if o != nil {
			o(&c)
		}
	}
	if c.maxAge <= 0 {
		return nil, &InputError{Op: "new ledger", Field: "max age", Value: c.maxAge.String(), Err: ErrInvalidOption}
	}
	if c.retention < 0 {
		return nil, &InputError{Op: "new ledger", Field: "retention", Value: c.retention.String(), Err: ErrInvalidOption}
	}
	var base Amounts
	for r, v := range NovaDefaultLimits() {
		base[r] = v
	}
	defaults, err := c.defaults.amounts("new ledger", base)
	if err != nil {
		return nil, err
	}
	l := &Ledger{
		store:     c.store,
		now:       c.now,
		ids:       c.ids,
		maxAge:    c.maxAge,
		retention: c.retention,
		defaults:  defaults,
		log:       c.log,
	}
	if l.store == nil {
		l.store = NewMemStore()
	}
	if l.now == nil {
		l.now = time.Now
	}
	if l.log == nil {
		l.log = slog.New(discardHandler{})
	}
	return l, nil
}

// usable returns ErrNotInitialized for a nil Ledger or one not made by
// NewLedger (a zero Ledger has no store, clock or logger).
func (l *Ledger) usable() error {
	if l == nil || l.store == nil || l.now == nil || l.log == nil {
		return &InputError{Op: "ledger", Field: "receiver", Value: "not made by NewLedger", Err: ErrNotInitialized}
	}
	return nil
}

// discardHandler is a slog.Handler that drops everything.
type discardHandler struct{}

// Enabled reports false: nothing is logged.
func (discardHandler) Enabled(context.Context, slog.Level) bool { return false }

// Handle drops the record.
func (discardHandler) Handle(context.Context, slog.Record) error { return nil }

// WithAttrs returns the same handler.
func (d discardHandler) WithAttrs([]slog.Attr) slog.Handler { return d }

// WithGroup returns the same handler.
func (d discardHandler) WithGroup(string) slog.Handler { return d }

// maxTotal bounds reserved and in-use sums so they never overflow.
const maxTotal = math.MaxInt64 / 4

// init fills in a new record's limits and maps.
func (l *Ledger) init(pq *ProjectQuota) {
	if !pq.Initialized {
		pq.Initialized = true
		pq.Total.Limit = l.defaults
	}
	// A store that decodes a record may hand back empty maps as nil.
	if pq.Users == nil {
		pq.Users = make(map[string]*Counters)
	}
	if pq.Pending == nil {
		pq.Pending = make(map[string]*Reservation)
	}
	if pq.Settled == nil {
		pq.Settled = make(map[string]*Reservation)
	}
}

func unlimitedCounters() *Counters {
	c := &Counters{}
	for r := range c.Limit {
		c.Limit[r] = Unlimited
	}
	return c
}

// SetLimits sets project limits; resources not named keep their limits.
// A limit may be set below current usage: later reservations are refused
// until usage drops.
func (l *Ledger) SetLimits(ctx context.Context, project string, limits Limits) error {
	if err := l.usable(); err != nil {
		return err
	}
	if project == "" {
		return &InputError{Op: "set limits", Field: "project", Err: ErrEmptyProject}
	}
	if _, err := limits.amounts("set limits", Amounts{}); err != nil {
		return err
	}
	return l.store.Update(ctx, project, func(pq *ProjectQuota) error {
		l.init(pq)
		pq.Total.Limit, _ = limits.amounts("set limits", pq.Total.Limit)
		return nil
	})
}

// SetUserLimits sets the limits of one user within a project; resources not
// named keep their limits (Unlimited for a new user).
func (l *Ledger) SetUserLimits(ctx context.Context, project, user string, limits Limits) error {
	if err := l.usable(); err != nil {
		return err
	}
	if project == "" {
		return &InputError{Op: "set user limits", Field: "project", Err: ErrEmptyProject}
	}
	if user == "" {
		return &InputError{Op: "set user limits", Field: "user", Err: ErrEmptyUser}
	}
	if _, err := limits.amounts("set user limits", Amounts{}); err != nil {
		return err
	}
	return l.store.Update(ctx, project, func(pq *ProjectQuota) error {
		l.init(pq)
		uc := pq.Users[user]
		if uc == nil {
			uc = unlimitedCounters()
			pq.Users[user] = uc
		}
		uc.Limit, _ = limits.amounts("set user limits", uc.Limit)
		return nil
	})
}

// Reserve holds deltas for a user of a project and returns the reservation
// id, which the caller stores (with its migration) and later passes to
// Commit or Rollback exactly once; a reservation left pending expires after
// the ledger's maximum age.
//
// Every positive delta is checked, for the project and for the user, as
// in_use + reserved + delta ≤ limit (a limit of −1 never refuses); if any
// check fails nothing is reserved and the error is an *OverQuotaError naming
// every resource over. Positive deltas are added to reserved. Negative deltas
// are never refused and do not change reserved: they are applied to in_use
// at commit. An empty user skips the user checks. Empty deltas (a cold
// migration) give a reservation that changes nothing, so that flows can
// treat every operation alike.
func (l *Ledger) Reserve(ctx context.Context, project, user string, deltas Deltas) (string, error) {
	if err := l.usable(); err != nil {
		return "", err
	}
	if project == "" {
		return "", &InputError{Op: "reserve", Field: "project", Err: ErrEmptyProject}
	}
	a, err := deltas.Amounts()
	if err != nil {
		return "", err
	}
	t := l.getTxn()
	defer l.putTxn(t)
	id, err := l.newID(t, project)
	if err != nil {
		return "", err
	}
	t.res = &Reservation{ID: id, Project: project, User: user, Deltas: a, Created: l.now()}
	t.gen = id[:len(id)-len(project)-1]
	if err := l.store.Update(ctx, project, t.reserve); err != nil {
		return "", err
	}
	return id, nil
}

// newID returns "<unique part>/<project>" for a new reservation.
func (l *Ledger) newID(t *txn, project string) (string, error) {
	if l.ids == nil {
		return t.randomID(project)
	}
	gen, err := l.ids()
	if err != nil {
		return "", err
	}
	if gen == "" || strings.IndexByte(gen, '/') >= 0 {
		return "", &InputError{Op: "reserve", Field: "id", Value: gen, Err: ErrInvalidID}
	}
	return gen + "/" + project, nil
}

// txn carries one Reserve or settle through Store.Update. Ledgers pool them
// with their bound functions, so that the hot path allocates only the
// reservation and its id.
type txn struct {
	l       *Ledger
	reserve func(*ProjectQuota) error // t.reserveFn, bound once per txn
	settle  func(*ProjectQuota) error // t.settleFn, bound once per txn

	res    *Reservation // Reserve: the new reservation
	gen    string       // the unique part of the id
	op     string       // settle: "commit" or "rollback"
	id     string       // settle: the full id
	to     State        // settle: Committed or RolledBack
	now    time.Time
	result error      // settle: the answer when the store transaction must still be kept
	unders []Resource // settle: resources clamped at zero

	rng *rand.ChaCha8 // default ids: seeded from crypto/rand, one per txn so goroutines never share it
}

func (l *Ledger) getTxn() *txn {
	if t, ok := l.txns.Get().(*txn); ok {
		return t
	}
	t := &txn{l: l}
	t.reserve = t.reserveFn
	t.settle = t.settleFn
	return t
}

func (l *Ledger) putTxn(t *txn) {
	// Clear only what holds references, field by field: copying a whole
	// zero txn over t costs a bulk write barrier.
	t.res, t.gen, t.op, t.id, t.result, t.unders = nil, "", "", "", nil, t.unders[:0]
	l.txns.Put(t)
}

func (t *txn) reserveFn(pq *ProjectQuota) error {
	l, res := t.l, t.res
	l.init(pq)
	if pq.Pending[t.gen] != nil || pq.Settled[t.gen] != nil {
		return &InputError{Op: "reserve", Field: "id", Value: res.ID, Err: ErrInvalidID}
	}
	uc := pq.Users[res.User]
	var overs []Over
	for r, d := range res.Deltas {
		if d <= 0 {
			continue
		}
		rs := Resource(r)
		if o, over := check(&pq.Total, rs, d, ScopeProject); over {
			overs = append(overs, o)
		}
		if uc != nil {
			if o, over := check(uc, rs, d, ScopeUser); over {
				overs = append(overs, o)
			}
		}
		if pq.Total.InUse[r]+pq.Total.Reserved[r] > maxTotal-d {
			return &InputError{Op: "reserve", Field: rs.String(), Value: fmt.Sprint(d), Err: ErrInvalidDelta}
		}
	}
	if overs != nil {
		return &OverQuotaError{Project: res.Project, User: res.User, Overs: overs}
	}
	// Checks passed: from here on nothing fails.
	if res.User != "" && uc == nil {
		uc = unlimitedCounters()
		pq.Users[res.User] = uc
	}
	for r, d := range res.Deltas {
		if d > 0 {
			pq.Total.Reserved[r] += d
			if uc != nil {
				uc.Reserved[r] += d
			}
		}
	}
	pq.Pending[t.gen] = res
	return nil
}

// check reports whether d more of r would take scope c over its limit.
func check(c *Counters, r Resource, d int64, scope Scope) (Over, bool) {
	lim := c.Limit[r]
	if lim < 0 {
		return Over{}, false
	}
	used := c.InUse[r] + c.Reserved[r]
	if d <= lim-used {
		return Over{}, false
	}
	head := lim - used
	if head < 0 {
		head = 0
	}
	return Over{Resource: r, Scope: scope, Requested: d, Limit: lim, InUse: c.InUse[r], Reserved: c.Reserved[r], Headroom: head}, true
}

// splitID returns the generated part and the project of a reservation id.
func splitID(id string) (gen, project string, ok bool) {
	i := strings.IndexByte(id, '/')
	if i <= 0 || i == len(id)-1 {
		return "", "", false
	}
	return id[:i], id[i+1:], true
}

// Commit settles a reservation by applying its deltas to usage: positive
// deltas move from reserved to in_use, negative ones lower in_use (never
// below zero; what would go below is added to Unders and logged).
//
// Commit is idempotent: committing a reservation that is already
// committed succeeds and changes nothing, so a step retried after a crash
// (the id stored with the migration, the commit done but not recorded)
// needs no special case and never counts twice. Committing a reservation
// that was rolled back, expired, or never existed (or was settled longer
// ago than the retention) returns an error wrapping ErrAlreadyRolledBack,
// ErrReservationExpired or ErrUnknownReservation and changes nothing. A pending reservation older than the maximum age is
// expired by the call itself (as Expire would) and reported expired.
func (l *Ledger) Commit(ctx context.Context, id string) error {
	return l.settle(ctx, "commit", id, Committed)
}

// Rollback settles a reservation by releasing it: its positive deltas leave
// reserved and usage does not change.
//
// Rollback is idempotent: rolling back a reservation that is already
// rolled back succeeds and changes nothing. A rollback of an expired
// reservation returns an error wrapping ErrReservationExpired, which the
// caller may treat as success (expiry is a rollback). A rollback after a
// commit returns an error wrapping
// ErrAlreadyCommitted and changes nothing: the usage stays charged until a
// reverse reservation is committed.
func (l *Ledger) Rollback(ctx context.Context, id string) error {
	return l.settle(ctx, "rollback", id, RolledBack)
}

// settledErr is the sentinel for settling a reservation again that is
// already in state s. A state no settled reservation can have (a store
// that returns a corrupt record) counts as unknown rather than indexing
// out of range.
func settledErr(s State) error {
	switch s {
	case Committed:
		return ErrAlreadyCommitted
	case RolledBack:
		return ErrAlreadyRolledBack
	case Expired:
		return ErrReservationExpired
	}
	return ErrUnknownReservation
}

func (l *Ledger) settle(ctx context.Context, op, id string, to State) error {
	if err := l.usable(); err != nil {
		return err
	}
	gen, project, ok := splitID(id)
	if !ok {
		return &ReservationError{Op: op, ID: id, Err: ErrUnknownReservation}
	}
	t := l.getTxn()
	defer l.putTxn(t)
	t.op, t.id, t.gen, t.to, t.now = op, id, gen, to, l.now()
	if err := l.store.Update(ctx, project, t.settle); err != nil {
		return err
	}
	if t.result != nil {
		l.log.LogAttrs(ctx, slog.LevelInfo, "quota: reservation expired", slog.String("reservation", id))
		return t.result
	}
	if len(t.unders) > 0 {
		l.log.LogAttrs(ctx, slog.LevelWarn, "quota: commit clamped usage at zero",
			slog.String("reservation", id), slog.String("unders", joinResources(t.unders)))
	}
	return nil
}

func (t *txn) settleFn(pq *ProjectQuota) error {
	t.result, t.unders = nil, t.unders[:0] // a store may retry the transaction
	if !pq.Initialized {
		// A new, empty record: returning an error keeps the store from
		// keeping it.
		return &ReservationError{Op: t.op, ID: t.id, Err: ErrUnknownReservation}
	}
	t.l.init(pq)
	res := pq.Pending[t.gen]
	if res == nil {
		if s := pq.Settled[t.gen]; s != nil {
			if s.State == t.to {
				// A retry of the step that settled it (a process that
				// committed and crashed before recording it): done, and
				// nothing changes.
				return nil
			}
			return &ReservationError{Op: t.op, ID: t.id, State: s.State, Err: settledErr(s.State)}
		}
		return &ReservationError{Op: t.op, ID: t.id, Err: ErrUnknownReservation}
	}
	if !t.now.Before(res.Created.Add(t.l.maxAge)) {
		// Too old: expire it in this transaction, which must be kept.
		t.l.release(pq, res, Expired, t.now)
		t.result = &ReservationError{Op: t.op, ID: t.id, State: Expired, Err: ErrReservationExpired}
		return nil
	}
	if t.to == Committed {
		t.unders = apply(pq, res, t.unders)
	}
	t.l.release(pq, res, t.to, t.now)
	return nil
}

// joinResources lists resources by name, comma-separated.
func joinResources(rs []Resource) string {
	var b strings.Builder
	for i, r := range rs {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(r.String())
	}
	return b.String()
}

// apply adds a pending reservation's deltas to in_use (committing them)
// and appends to unders the resources it had to clamp at zero. The user's
// figure is clamped first and the project gets the change the user actually
// took, so that the project's in_use stays the sum of its users'.
func apply(pq *ProjectQuota, res *Reservation, unders []Resource) []Resource {
	uc := pq.Users[res.User] // nil when the user is empty
	for r, d := range res.Deltas {
		if d == 0 {
			continue
		}
		var clamped int64
		if uc != nil {
			v := uc.InUse[r] + d
			if v < 0 {
				clamped, d, v = -v, -uc.InUse[r], 0
				uc.Unders[r] += clamped
			}
			uc.InUse[r] = v
		}
		v := pq.Total.InUse[r] + d
		if v < 0 {
			clamped, v = clamped-v, 0
		}
		pq.Total.InUse[r] = v
		if clamped > 0 {
			pq.Total.Unders[r] += clamped
			unders = append(unders, Resource(r))
		}
	}
	return unders
}

// release takes a pending reservation's positive deltas out of reserved and
// moves it to the settled set in state to, then forgets settled
// reservations older than the retention.
func (l *Ledger) release(pq *ProjectQuota, res *Reservation, to State, now time.Time) {
	uc := pq.Users[res.User]
	for r, d := range res.Deltas {
		if d > 0 {
			pq.Total.Reserved[r] -= d
			if uc != nil {
				uc.Reserved[r] -= d
			}
		}
	}
	gen, _, _ := splitID(res.ID)
	delete(pq.Pending, gen)
	res.State = to
	res.Settled = now
	pq.Settled[gen] = res
	pq.SettledOrder = append(pq.SettledOrder, gen)
	l.forget(pq, now)
}

// forget drops settled reservations older than the retention, oldest first.
func (l *Ledger) forget(pq *ProjectQuota, now time.Time) {
	cut := now.Add(-l.retention)
	n := 0
	for _, gen := range pq.SettledOrder {
		s := pq.Settled[gen]
		if s != nil && s.Settled.After(cut) {
			break
		}
		delete(pq.Settled, gen)
		n++
	}
	if n > 0 {
		pq.SettledOrder = pq.SettledOrder[n:]
	}
}

// Expire rolls back every pending reservation older than the maximum age,
// in every project, and forgets settled ones older than the retention, like
// Nova's periodic expire_reservations. It returns the ids it expired. It
// goes on past a project that fails and returns every error joined.
func (l *Ledger) Expire(ctx context.Context) ([]string, error) {
	if err := l.usable(); err != nil {
		return nil, err
	}
	projects, err := l.store.Projects(ctx)
	if err != nil {
		return nil, err
	}
	now := l.now()
	var expired []string
	var errs []error
	for _, p := range projects {
		if err := ctx.Err(); err != nil {
			errs = append(errs, err)
			break
		}
		var ids []string
		err := l.store.Update(ctx, p, func(pq *ProjectQuota) error {
			ids = ids[:0] // a store may retry the transaction
			if !pq.Initialized {
				return &InputError{Op: "expire", Field: "project", Value: p, Err: ErrUnknownProject}
			}
			l.init(pq)
			for _, res := range pq.Pending {
				if !now.Before(res.Created.Add(l.maxAge)) {
					ids = append(ids, res.ID)
					l.release(pq, res, Expired, now)
				}
			}
			l.forget(pq, now)
			return nil
		})
		switch {
		case err == nil:
			expired = append(expired, ids...)
		case !errors.Is(err, ErrUnknownProject):
			errs = append(errs, fmt.Errorf("quota: expire project %q: %w", p, err))
		}
	}
	for _, id := range expired {
		l.log.LogAttrs(ctx, slog.LevelInfo, "quota: reservation expired", slog.String("reservation", id))
	}
	return expired, errors.Join(errs...)
}
