package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/migrate"
	"github.com/xenflow/xenflow/quota"
	"github.com/xenflow/xenflow/sqlstore"
)

// crashAfterEnv is a test hook: when it holds N > 0, the process kills
// itself with SIGKILL right after its N-th persisted Transition, so a
// test can stop the orchestrator at an exact step and check what
// -resume makes of it; with any value set, each persisted Transition is
// counted on stderr ("persisted step N"). It is not a flag: nothing but a
// crash test wants it.
const crashAfterEnv = "XENFLOW_RESIZE_CRASH_AFTER"

// stores are the run's Store and quota ledger: in memory, or in the
// database -db names (sqlstore: a SQLite file or PostgreSQL).
type stores struct {
	store  compute.Store
	ledger *quota.Ledger
	// durable is set when the stores outlive the process.
	durable bool
	// kept is the instance an earlier run left in the Store.
	kept *compute.Instance
	// wait returns when work may have arrived (sqlstore's Store.Wait).
	wait  func(context.Context) error
	close func()
}

// loaded reports whether inst is the record an earlier run left in the
// Store.
func (s *stores) loaded(inst *compute.Instance) bool { return s.kept != nil && s.kept == inst }

// openStores opens the stores -db names (memory when empty) with opts and
// wraps the Store with the crash hook when crashAfterEnv asks for it.
func openStores(ctx context.Context, dsn string, opts ...sqlstore.Option) (*stores, error) {
	if dsn == "" {
		ledger, err := quota.NewLedger()
		if err != nil {
			return nil, err
		}
		return &stores{store: compute.NewMemoryStore(), ledger: ledger, close: func() {}}, nil
	}
	db, err := sqlstore.Open(ctx, dsn, opts...)
	if err != nil {
		return nil, fmt.Errorf("-db: %w", err)
	}
	ledger, err := quota.NewLedger(quota.WithStore(db.Quota()))
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	s := &stores{store: db, ledger: ledger, durable: true, wait: db.Wait, close: func() { _ = db.Close() }}
	if v, ok := os.LookupEnv(crashAfterEnv); ok {
		n, _ := strconv.Atoi(v)
		s.store = &crashStore{Store: db, after: n}
	}
	return s, nil
}

// crashStore kills the process with SIGKILL right after the after-th
// Transition it persisted (the crashAfterEnv test hook).
type crashStore struct {
	compute.Store
	after, done int
}

// Transition implements compute.TransitionStore.
func (s *crashStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil {
		s.done++
		fmt.Fprintf(os.Stderr, "persisted step %d\n", s.done)
		if s.done == s.after {
			_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
			select {} // the signal is on its way
		}
	}
	return inst, mig, err
}

// adoptOrLoad returns the instance the Store keeps under uuid, or nil
// when it keeps none (the memory Store keeps nothing between runs).
func adoptOrLoad(ctx context.Context, st compute.Store, uuid string) (*compute.Instance, error) {
	if uuid == "" {
		return nil, nil
	}
	inst, err := st.GetInstance(ctx, uuid)
	if errors.Is(err, compute.ErrNotFound) {
		return nil, nil
	}
	return inst, err
}

// resume drives every operation left unfinished in the Store to its end
// and prints each outcome; the error joins those that stopped one.
func resume(ctx context.Context, orch *migrate.Orchestrator, stdout io.Writer) error {
	outs, err := orch.Resume(ctx)
	for _, o := range outs {
		line := fmt.Sprintf("resumed   %s: %s -> %s", o.InstanceUUID, o.From, o.To)
		if o.Err != nil {
			line += " (" + o.Err.Error() + ")"
		}
		fmt.Fprintln(stdout, line)
	}
	fmt.Fprintf(stdout, "resumed %d operation(s)\n", len(outs))
	return err
}
