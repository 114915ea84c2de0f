package compute

import "context"

var _ InstanceDestroyer = (*MemoryStore)(nil)

// DestroyInstance implements [InstanceDestroyer]: the instance, its
// migrations, actions, faults and lease are removed under one lock.
func (s *MemoryStore) DestroyInstance(ctx context.Context, uuid string) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if uuid == "" {
		return &InvalidRecordError{Kind: KindInstance, Field: "uuid", Reason: "empty"}
	}
	s.mu.Lock()
	s.initLocked()
	defer s.mu.Unlock()
	for id, m := range s.migrations {
		if m.InstanceUUID == uuid {
			delete(s.migrations, id)
		}
	}
	delete(s.instances, uuid)
	delete(s.actions, uuid)
	delete(s.faults, uuid)
	delete(s.leases, uuid)
	return nil
}
