package compute

import (
	"context"
	"time"
)

// leaseRecord is an instance's lease: the last fence handed out, and the
// holder while held is true.
type leaseRecord struct {
	owner   string
	fence   uint64
	expires time.Time
	held    bool
}

// current reports whether the lease is held and unexpired at now.
func (r *leaseRecord) current(now time.Time) bool {
	return r != nil && r.held && now.Before(r.expires)
}

// lease returns the Lease r describes.
func (r *leaseRecord) lease(instanceUUID string) Lease {
	return Lease{InstanceUUID: instanceUUID, Owner: r.owner, Fence: r.fence, Expires: r.expires}
}

// Transition implements [TransitionStore]. Apply runs once, with the store
// locked.
func (s *MemoryStore) Transition(ctx context.Context, req TransitionRequest) (*Instance, *Migration, error) {
	if err := s.usable(ctx); err != nil {
		return nil, nil, err
	}
	if err := req.Validate(); err != nil {
		return nil, nil, err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	inst, mig, err := s.transitionRecordsLocked(req)
	if err != nil {
		return nil, nil, err
	}
	now := s.now()
	if err := checkLease(s.leases[req.InstanceUUID], req.Lease, req.InstanceUUID, now); err != nil {
		return nil, nil, err
	}
	from := inst.FlowState(mig)
	if req.NewMigration != nil {
		from = inst.FlowState(nil)
	}
	if from != req.Expect {
		return nil, nil, &UnexpectedStateError{InstanceUUID: req.InstanceUUID, Expected: req.Expect, Actual: from}
	}
	if err := req.Apply(inst, mig); err != nil {
		return nil, nil, err
	}
	if err := req.CheckApplied(inst, mig); err != nil {
		return nil, nil, err
	}
	s.storeStepLocked(inst, mig, now)
	return inst, mig, nil
}

// transitionRecordsLocked returns copies of the records the step starts
// from: the instance and the stored migration, or a copy of the new one.
func (s *MemoryStore) transitionRecordsLocked(req TransitionRequest) (*Instance, *Migration, error) {
	cur, ok := s.instances[req.InstanceUUID]
	if !ok {
		return nil, nil, &NotFoundError{Kind: KindInstance, ID: req.InstanceUUID}
	}
	inst := cur.Clone()
	switch {
	case req.NewMigration != nil:
		if _, ok := s.migrations[req.NewMigration.UUID]; ok {
			return nil, nil, &AlreadyExistsError{Kind: KindMigration, ID: req.NewMigration.UUID}
		}
		return inst, req.NewMigration.Clone(), nil
	case req.MigrationUUID == "":
		return inst, nil, nil
	}
	m, ok := s.migrations[req.MigrationUUID]
	if !ok {
		return nil, nil, &NotFoundError{Kind: KindMigration, ID: req.MigrationUUID}
	}
	if m.InstanceUUID != req.InstanceUUID {
		return nil, nil, &InvalidRecordError{Kind: KindMigration, ID: m.UUID, Field: "instance_uuid",
			Reason: "belongs to instance " + quote(m.InstanceUUID) + ", not " + quote(req.InstanceUUID)}
	}
	return inst, m.Clone(), nil
}

// checkLease refuses a step whose lease is not rec, the one in force.
func checkLease(rec *leaseRecord, l Lease, instanceUUID string, now time.Time) error {
	if rec.current(now) && rec.owner == l.Owner && rec.fence == l.Fence {
		return nil
	}
	lost := &LeaseLostError{InstanceUUID: instanceUUID, Owner: l.Owner, Fence: l.Fence}
	if rec.current(now) {
		lost.CurrentFence = rec.fence
	}
	return lost
}

// storeStepLocked stamps the step's records with now, keeping the stored
// CreatedAt (or setting it for a new migration), and stores copies of them.
func (s *MemoryStore) storeStepLocked(inst *Instance, mig *Migration, now time.Time) {
	inst.stamp(s.instances[inst.UUID].CreatedAt, now)
	s.instances[inst.UUID] = inst.Clone()
	if mig != nil {
		created := now
		if cur, ok := s.migrations[mig.UUID]; ok {
			created = cur.CreatedAt
		}
		mig.stamp(created, now)
		s.migrations[mig.UUID] = mig.Clone()
	}
}

// AcquireLease implements [LeaseStore].
func (s *MemoryStore) AcquireLease(ctx context.Context, req LeaseRequest) (Lease, error) {
	if err := s.usable(ctx); err != nil {
		return Lease{}, err
	}
	if err := checkLeaseRequest(req.InstanceUUID, req.Owner, req.TTL); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	if _, ok := s.instances[req.InstanceUUID]; !ok {
		return Lease{}, &NotFoundError{Kind: KindInstance, ID: req.InstanceUUID}
	}
	now := s.now()
	rec := s.leases[req.InstanceUUID]
	if rec == nil {
		rec = &leaseRecord{}
		s.leases[req.InstanceUUID] = rec
	}
	switch {
	case rec.current(now) && rec.owner != req.Owner:
		return Lease{}, &LeaseHeldError{InstanceUUID: req.InstanceUUID, Holder: rec.owner, Expires: rec.expires}
	case !rec.current(now):
		rec.fence++
		rec.owner, rec.held = req.Owner, true
	}
	rec.expires = now.Add(req.TTL)
	return rec.lease(req.InstanceUUID), nil
}

// checkLeaseRequest refuses a lease without an instance, an owner or a
// positive TTL.
func checkLeaseRequest(instanceUUID, owner string, ttl time.Duration) error {
	switch {
	case instanceUUID == "":
		return &InvalidRecordError{Kind: KindLease, Field: "instance_uuid", Reason: "empty"}
	case owner == "":
		return &InvalidRecordError{Kind: KindLease, ID: instanceUUID, Field: "owner", Reason: "empty"}
	case ttl <= 0:
		return &InvalidRecordError{Kind: KindLease, ID: instanceUUID, Field: "ttl", Reason: "not positive: " + ttl.String()}
	}
	return nil
}

// RenewLease implements [LeaseStore].
func (s *MemoryStore) RenewLease(ctx context.Context, l Lease, ttl time.Duration) (Lease, error) {
	if err := s.usable(ctx); err != nil {
		return Lease{}, err
	}
	if err := checkLeaseRequest(l.InstanceUUID, l.Owner, ttl); err != nil {
		return Lease{}, err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	now := s.now()
	rec := s.leases[l.InstanceUUID]
	if err := checkLease(rec, l, l.InstanceUUID, now); err != nil {
		return Lease{}, err
	}
	rec.expires = now.Add(ttl)
	return rec.lease(l.InstanceUUID), nil
}

// ReleaseLease implements [LeaseStore].
func (s *MemoryStore) ReleaseLease(ctx context.Context, l Lease) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	if rec := s.leases[l.InstanceUUID]; rec.current(s.now()) && rec.owner == l.Owner && rec.fence == l.Fence {
		rec.held = false
	}
	return nil
}
