package sqlstore

import (
	"context"
	"database/sql"
	"time"

	"github.com/xenflow/xenflow/compute"
)

func actionID(instanceUUID, requestID string) string { return instanceUUID + "/" + requestID }

// CreateAction implements compute.ActionStore.
func (s *Store) CreateAction(ctx context.Context, a *compute.InstanceAction) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := a.Validate(); err != nil {
		return err
	}
	c := a.Clone()
	if c.StartTime.IsZero() {
		c.StartTime = s.stamp()
	}
	id := actionID(c.InstanceUUID, c.RequestID)
	rec, err := encode(compute.KindAction, id, c)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "create action", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO instance_actions (instance_uuid, request_id, seq, record)
			SELECT ?, ?, COALESCE(MAX(seq), 0) + 1, ? FROM instance_actions WHERE instance_uuid = ?
			ON CONFLICT DO NOTHING`), c.InstanceUUID, c.RequestID, rec, c.InstanceUUID)
		return s.created(oneRow(res, err), compute.KindAction, id)
	})
	if err != nil {
		return err
	}
	a.StartTime = c.StartTime
	return nil
}

// GetAction implements compute.ActionStore.
func (s *Store) GetAction(ctx context.Context, instanceUUID, requestID string) (*compute.InstanceAction, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	id := actionID(instanceUUID, requestID)
	var rec string
	err := s.db.QueryRowContext(ctx, s.d.q(`SELECT record FROM instance_actions WHERE instance_uuid = ? AND request_id = ?`),
		instanceUUID, requestID).Scan(&rec)
	if err != nil {
		return nil, s.notFound("get action", compute.KindAction, id, err)
	}
	a := &compute.InstanceAction{}
	return a, decode(compute.KindAction, id, rec, a)
}

// ListActions implements compute.ActionStore.
func (s *Store) ListActions(ctx context.Context, instanceUUID string) ([]*compute.InstanceAction, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	return listRecords(ctx, s, "list actions", `SELECT request_id, record FROM instance_actions WHERE instance_uuid = ?
		ORDER BY seq, request_id`, []any{instanceUUID}, func(row scanner) (*compute.InstanceAction, error) {
		var req, rec string
		if err := row.Scan(&req, &rec); err != nil {
			return nil, err
		}
		a := &compute.InstanceAction{}
		return a, decode(compute.KindAction, actionID(instanceUUID, req), rec, a)
	})
}

// changeAction reads the action for update, calls change and writes it
// back, in one transaction.
func (s *Store) changeAction(ctx context.Context, op, instanceUUID, requestID string, change func(*compute.InstanceAction)) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	id := actionID(instanceUUID, requestID)
	return s.inTx(ctx, op, func(tx *sql.Tx) error {
		var rec string
		err := tx.QueryRowContext(ctx, s.d.q(`SELECT record FROM instance_actions WHERE instance_uuid = ? AND request_id = ?`+
			s.d.forUpdate), instanceUUID, requestID).Scan(&rec)
		if err != nil {
			return s.notFound(op, compute.KindAction, id, err)
		}
		a := &compute.InstanceAction{}
		if err := decode(compute.KindAction, id, rec, a); err != nil {
			return err
		}
		change(a)
		if rec, err = encode(compute.KindAction, id, a); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, s.d.q(`UPDATE instance_actions SET record = ? WHERE instance_uuid = ? AND request_id = ?`),
			rec, instanceUUID, requestID)
		return s.wrap(op, err)
	})
}

// SaveActionEvent implements compute.ActionStore.
func (s *Store) SaveActionEvent(ctx context.Context, instanceUUID, requestID string, ev compute.InstanceActionEvent) error {
	if ev.Event == "" {
		return &compute.InvalidRecordError{Kind: compute.KindAction, ID: actionID(instanceUUID, requestID), Field: "event", Reason: "empty name"}
	}
	if ev.StartTime.IsZero() {
		ev.StartTime = s.stamp()
	}
	return s.changeAction(ctx, "save action event", instanceUUID, requestID, func(a *compute.InstanceAction) {
		replaced := false
		for i := range a.Events {
			if a.Events[i].Event == ev.Event && a.Events[i].FinishTime.IsZero() {
				a.Events[i] = ev
				replaced = true
				break
			}
		}
		if !replaced {
			a.Events = append(a.Events, ev)
		}
		if ev.Result == compute.EventResultError {
			a.Message = compute.EventResultError
		}
	})
}

// FinishAction implements compute.ActionStore.
func (s *Store) FinishAction(ctx context.Context, instanceUUID, requestID string, at time.Time) error {
	return s.changeAction(ctx, "finish action", instanceUUID, requestID, func(a *compute.InstanceAction) { a.FinishTime = at })
}

// AddFault implements compute.FaultStore.
func (s *Store) AddFault(ctx context.Context, f *compute.Fault) error {
	if err := s.usable(ctx); err != nil {
		return err
	}
	if err := f.Validate(); err != nil {
		return err
	}
	c := f.Clone()
	c.CreatedAt = s.stamp()
	rec, err := encode(compute.KindFault, c.InstanceUUID, c)
	if err != nil {
		return err
	}
	err = s.inTx(ctx, "add fault", func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, s.d.q(`INSERT INTO instance_faults (instance_uuid, seq, record)
			SELECT ?, COALESCE(MAX(seq), 0) + 1, ? FROM instance_faults WHERE instance_uuid = ?`), c.InstanceUUID, rec, c.InstanceUUID)
		return s.wrap("add fault", err)
	})
	if err != nil {
		return err
	}
	f.CreatedAt = c.CreatedAt
	return nil
}

// ListFaults implements compute.FaultStore.
func (s *Store) ListFaults(ctx context.Context, instanceUUID string) ([]*compute.Fault, error) {
	if err := s.usable(ctx); err != nil {
		return nil, err
	}
	out, err := listRecords(ctx, s, "list faults", `SELECT record FROM instance_faults WHERE instance_uuid = ? ORDER BY seq DESC`,
		[]any{instanceUUID}, func(row scanner) (*compute.Fault, error) {
			var rec string
			if err := row.Scan(&rec); err != nil {
				return nil, err
			}
			f := &compute.Fault{}
			return f, decode(compute.KindFault, instanceUUID, rec, f)
		})
	if out == nil && err == nil {
		out = []*compute.Fault{}
	}
	return out, err
}
