package main

import (
	"context"
	"sync"
	"time"

	"github.com/xenflow/xenflow/compute"
	"github.com/xenflow/xenflow/scheduler"
	sm "github.com/xenflow/xenflow/statemachine"
)

// eventKind says what an event of the run is.
type eventKind int

const (
	evTransition eventKind = iota // a step written to the Store
	evCall                        // a driver call begins
	evReturn                      // a driver call ends
	evStep                        // the driver names a new step of its call
	evCheckBegin                  // the run's own disk check begins (its calls are not the flow's)
	evCheckEnd                    // the disk check ends
)

// event is one thing the run saw, in order. Mark is the length of the
// pool's call log when it happened (-1 when there is no call log), so the
// XenAPI calls can be placed between events.
type event struct {
	Kind     eventKind
	From, To sm.FlowState
	Method   string
	Host     string
	Err      error
	Mark     int
	At       time.Time
}

// observer collects the run's events and passes them on to the reporter.
type observer struct {
	mu     sync.Mutex
	events []event
	// mark returns the length of the pool's call log (nil: no log).
	mark func() int
	now  func() time.Time
	// onEvent, when not nil, is told each event as it happens.
	onEvent func(event)
}

// add records e, stamped with the call-log mark and the time.
func (o *observer) add(e event) {
	e.Mark = -1
	if o.mark != nil {
		e.Mark = o.mark()
	}
	e.At = o.now()
	o.mu.Lock()
	o.events = append(o.events, e)
	o.mu.Unlock()
	if o.onEvent != nil {
		o.onEvent(e)
	}
}

// list returns a copy of the events so far.
func (o *observer) list() []event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]event(nil), o.events...)
}

// observedStore is a compute.Store whose step writes are recorded: every
// Transition that changes the (vm_state, task_state, migration status)
// is an evTransition event.
type observedStore struct {
	compute.Store
	obs *observer
}

// Transition implements compute.TransitionStore.
func (s *observedStore) Transition(ctx context.Context, req compute.TransitionRequest) (*compute.Instance, *compute.Migration, error) {
	inst, mig, err := s.Store.Transition(ctx, req)
	if err == nil {
		to := inst.FlowState(mig)
		if to != req.Expect {
			s.obs.add(event{Kind: evTransition, From: req.Expect, To: to})
		}
	}
	return inst, mig, err
}

// moveHooks are told where a disk move is, for the guest's writer and the
// downtime.
type moveHooks struct {
	// moveStarted is called as MigrateDiskAndPowerOff begins.
	moveStarted func()
	// poweredOff is called once, when the driver reports the guest off.
	poweredOff func()
	// moveDone is called with MigrateDiskAndPowerOff's result.
	moveDone func(compute.DiskInfo, error)
	// finished is called when FinishMigration returns.
	finished func(error)
}

// observedDriver is a compute.Driver whose calls are recorded (evCall,
// evReturn, evStep) and whose disk move tells the hooks.
type observedDriver struct {
	compute.Driver
	obs   *observer
	hooks moveHooks
}

// call records a driver call around f.
func (d *observedDriver) call(method, host string, f func() error) error {
	d.obs.add(event{Kind: evCall, Method: method, Host: host})
	err := f()
	d.obs.add(event{Kind: evReturn, Method: method, Host: host, Err: err})
	return err
}

// MigrateDiskAndPowerOff implements compute.Driver.
func (d *observedDriver) MigrateDiskAndPowerOff(ctx context.Context, req compute.MigrateDiskRequest) (compute.DiskInfo, error) {
	var info compute.DiskInfo
	if d.hooks.moveStarted != nil {
		d.hooks.moveStarted()
	}
	next, lastStep, off := req.Progress, "", false
	req.Progress = func(p compute.Progress) {
		if p.Step != lastStep {
			lastStep = p.Step
			d.obs.add(event{Kind: evStep, Method: p.Step, Host: req.Host})
		}
		if p.PoweredOff && !off {
			off = true
			if d.hooks.poweredOff != nil {
				d.hooks.poweredOff()
			}
		}
		if next != nil {
			next(p)
		}
	}
	err := d.call("MigrateDiskAndPowerOff", req.Host, func() error {
		var err error
		info, err = d.Driver.MigrateDiskAndPowerOff(ctx, req)
		return err
	})
	if d.hooks.moveDone != nil {
		d.hooks.moveDone(info, err)
	}
	return info, err
}

// FinishMigration implements compute.Driver.
func (d *observedDriver) FinishMigration(ctx context.Context, req compute.FinishMigrationRequest) error {
	err := d.call("FinishMigration", req.Host, func() error { return d.Driver.FinishMigration(ctx, req) })
	if d.hooks.finished != nil {
		d.hooks.finished(err)
	}
	return err
}

// GetAvailableResource implements compute.Driver.
func (d *observedDriver) GetAvailableResource(ctx context.Context, req compute.HostRequest) (st scheduler.HostState, err error) {
	err = d.call("GetAvailableResource", req.Host, func() error {
		st, err = d.Driver.GetAvailableResource(ctx, req)
		return err
	})
	return st, err
}

// GetInfo implements compute.Driver.
func (d *observedDriver) GetInfo(ctx context.Context, req compute.InstanceRequest) (info compute.InstanceInfo, err error) {
	err = d.call("GetInfo", req.Host, func() error {
		info, err = d.Driver.GetInfo(ctx, req)
		return err
	})
	return info, err
}

// ConfirmMigration implements compute.Driver.
func (d *observedDriver) ConfirmMigration(ctx context.Context, req compute.ConfirmMigrationRequest) error {
	return d.call("ConfirmMigration", req.Host, func() error { return d.Driver.ConfirmMigration(ctx, req) })
}

// FinishRevertMigration implements compute.Driver.
func (d *observedDriver) FinishRevertMigration(ctx context.Context, req compute.FinishRevertRequest) error {
	return d.call("FinishRevertMigration", req.Host, func() error { return d.Driver.FinishRevertMigration(ctx, req) })
}

// Destroy implements compute.Driver.
func (d *observedDriver) Destroy(ctx context.Context, req compute.DestroyRequest) error {
	return d.call("Destroy", req.Host, func() error { return d.Driver.Destroy(ctx, req) })
}

// CleanupMigration implements compute.Driver.
func (d *observedDriver) CleanupMigration(ctx context.Context, req compute.CleanupMigrationRequest) error {
	return d.call("CleanupMigration", req.Host, func() error { return d.Driver.CleanupMigration(ctx, req) })
}

// PowerOff implements compute.Driver.
func (d *observedDriver) PowerOff(ctx context.Context, req compute.PowerOffRequest) error {
	return d.call("PowerOff", req.Host, func() error { return d.Driver.PowerOff(ctx, req) })
}

// PowerOn implements compute.Driver.
func (d *observedDriver) PowerOn(ctx context.Context, req compute.InstanceRequest) error {
	return d.call("PowerOn", req.Host, func() error { return d.Driver.PowerOn(ctx, req) })
}
