package xenapi

import (
	"context"
	"time"
)

// VDIIntroduceArgs are the parameters of VDI.introduce (and of the hidden
// VDI.db_introduce and VDI.pool_introduce), in xapi's order. The fields
// from XenstoreData on have server defaults; trailing ones that hold their
// default are left off the wire.
type VDIIntroduceArgs struct {
	UUID            string
	NameLabel       string
	NameDescription string
	SR              SRRef
	Type            VDIType
	Sharable        bool
	ReadOnly        bool
	OtherConfig     map[string]string
	Location        string
	// Optional, with xapi's defaults in brackets.
	XenstoreData        map[string]string // [{}]
	SMConfig            map[string]string // [{}]
	Unmanaged           bool              // sent as managed = !Unmanaged [managed = true]
	VirtualSize         int64             // [0]
	PhysicalUtilisation int64             // [0]
	MetadataOfPool      PoolRef           // [OpaqueRef:NULL]
	IsASnapshot         bool              // [false]
	SnapshotTime        time.Time         // [19700101T00:00:00Z]
	SnapshotOf          VDIRef            // [OpaqueRef:NULL]
}

// params returns the wire parameters, without trailing defaults.
func (a VDIIntroduceArgs) params() []any {
	oc := a.OtherConfig
	if oc == nil {
		oc = map[string]string{}
	}
	ps := []any{a.UUID, a.NameLabel, a.NameDescription, a.SR, a.Type, a.Sharable, a.ReadOnly, oc, a.Location}
	optional := []struct {
		v         any
		isDefault bool
	}{
		{nonNilMap(a.XenstoreData), len(a.XenstoreData) == 0},
		{nonNilMap(a.SMConfig), len(a.SMConfig) == 0},
		{!a.Unmanaged, !a.Unmanaged},
		{a.VirtualSize, a.VirtualSize == 0},
		{a.PhysicalUtilisation, a.PhysicalUtilisation == 0},
		{nullIfEmpty(string(a.MetadataOfPool)), IsNull(a.MetadataOfPool)},
		{a.IsASnapshot, !a.IsASnapshot},
		{snapshotTime(a.SnapshotTime), a.SnapshotTime.IsZero() || a.SnapshotTime.Unix() == 0},
		{nullIfEmpty(string(a.SnapshotOf)), IsNull(a.SnapshotOf)},
	}
	n := 0
	for i, o := range optional {
		if !o.isDefault {
			n = i + 1
		}
	}
	for _, o := range optional[:n] {
		ps = append(ps, o.v)
	}
	return ps
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

func nullIfEmpty(r string) string {
	if r == "" {
		return NullRef
	}
	return r
}

func snapshotTime(t time.Time) time.Time {
	if t.IsZero() {
		return time.Unix(0, 0).UTC()
	}
	return t.UTC()
}

// Introduce calls VDI.introduce: creates the record of a disk that already
// exists on the SR (SR_OPERATION_NOT_SUPPORTED on SRs that cannot).
func (x VDIClass) Introduce(ctx context.Context, args VDIIntroduceArgs) (VDIRef, error) {
	v, err := x.c.call(ctx, "VDI.introduce", args.params()...)
	return decodeString[VDIRef](v, err, "VDI.introduce")
}

// DBIntroduce calls the hidden VDI.db_introduce (local root sessions only):
// like Introduce, without asking the storage backend.
func (x VDIClass) DBIntroduce(ctx context.Context, args VDIIntroduceArgs) (VDIRef, error) {
	v, err := x.c.call(ctx, "VDI.db_introduce", args.params()...)
	return decodeString[VDIRef](v, err, "VDI.db_introduce")
}

// PoolIntroduce calls the hidden VDI.pool_introduce: creates the record in
// the pool database from another host's metadata.
func (x VDIClass) PoolIntroduce(ctx context.Context, args VDIIntroduceArgs) (VDIRef, error) {
	v, err := x.c.call(ctx, "VDI.pool_introduce", args.params()...)
	return decodeString[VDIRef](v, err, "VDI.pool_introduce")
}

// DBForget calls the hidden VDI.db_forget (local root sessions only):
// removes the record without asking the storage backend.
func (x VDIClass) DBForget(ctx context.Context, vdi VDIRef) error {
	_, err := x.c.call(ctx, "VDI.db_forget", vdi)
	return err
}

// Introduce starts VDI.introduce as a task and returns the task; the
// task's result is the new VDI's ref.
func (x AsyncVDIClass) Introduce(ctx context.Context, args VDIIntroduceArgs) (TaskRef, error) {
	v, err := x.c.call(ctx, "Async.VDI.introduce", args.params()...)
	return decodeString[TaskRef](v, err, "Async.VDI.introduce")
}

// handWrittenMethods lists the wire names of the typed calls written by
// hand rather than generated.
func handWrittenMethods() []string {
	return []string{"VDI.introduce", "VDI.db_introduce", "VDI.pool_introduce", "VDI.db_forget", "Async.VDI.introduce"}
}
