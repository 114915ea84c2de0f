package compute

import "github.com/xenflow/xenflow/statemachine"

// Validate refuses a request that cannot name a step, before anything is
// read: every Store checks it first.
func (req TransitionRequest) Validate() error {
	bad := func(field, reason string) error {
		return &InvalidRecordError{Kind: KindInstance, ID: req.InstanceUUID, Field: "transition." + field, Reason: reason}
	}
	switch {
	case req.InstanceUUID == "":
		return &InvalidRecordError{Kind: KindInstance, Field: "transition.instance_uuid", Reason: "empty"}
	case req.Apply == nil:
		return bad("apply", "nil")
	case req.NewMigration == nil:
		return nil
	case req.MigrationUUID != "" && req.MigrationUUID != req.NewMigration.UUID:
		return bad("migration_uuid", "differs from the new migration's "+quote(req.NewMigration.UUID))
	case req.Expect.Migration != statemachine.MigrationNone:
		return bad("expect", "a step that creates the migration expects migration status none, not "+req.Expect.Migration.String())
	case req.NewMigration.InstanceUUID != req.InstanceUUID:
		return bad("new_migration.instance_uuid", "is "+quote(req.NewMigration.InstanceUUID))
	}
	return req.NewMigration.Validate()
}

// CheckApplied refuses the records req.Apply left unstorable: invalid, or
// with their UUIDs changed. Every Store checks it before it writes.
func (req TransitionRequest) CheckApplied(inst *Instance, mig *Migration) error {
	if inst.UUID != req.InstanceUUID {
		return &InvalidRecordError{Kind: KindInstance, ID: req.InstanceUUID, Field: "uuid", Reason: "changed by the step"}
	}
	if err := inst.Validate(); err != nil {
		return err
	}
	if mig == nil {
		return nil
	}
	want := req.MigrationUUID
	if req.NewMigration != nil {
		want = req.NewMigration.UUID
	}
	if mig.UUID != want || mig.InstanceUUID != req.InstanceUUID {
		return &InvalidRecordError{Kind: KindMigration, ID: want, Field: "uuid", Reason: "changed by the step"}
	}
	return mig.Validate()
}
