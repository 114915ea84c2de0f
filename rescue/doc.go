// Package rescue orchestrates Nova's rescue and unrescue on a compute.Driver:
// a rescue guest booted from a rescue image with the instance's root disk
// attached as a second disk, and the way back to the original guest.
//
// The steps are Nova's (nova/compute/api.py API.rescue and API.unrescue,
// nova/compute/manager.py ComputeManager.rescue_instance,
// unrescue_instance and _poll_rescued_instances), written through the
// Store's atomic transitions under a lease, each before its effect:
//
//	rescue:   (active|stopped|error, none) -> task rescuing  -> driver.Rescue -> (rescued, none)
//	unrescue: (rescued, none) -> task unrescuing -> driver.Unrescue -> (active, none)
//
// Where Nova sets vm_state error when driver.rescue fails, the orchestrator
// first puts the original guest back (driver.Unrescue, which releases the
// bootlock) and returns the instance to the vm_state it had, with a fault
// recorded; only when that also fails does the instance end in error.
// [Orchestrator.Resume] drives every rescue or unrescue a crashed
// orchestrator left behind: an interrupted rescue is rolled back (its
// password was only ever returned to the caller that lost it), an
// interrupted unrescue is finished.
//
// The rescue password, when the caller gives none, is drawn from the
// configured randomness as Nova's utils.generate_password does, returned
// once and never logged or stored.
package rescue
