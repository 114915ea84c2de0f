// Package computetest holds what tests of the compute ports share: the
// conformance suite every [compute.Store] passes ([TestStore]), a clock
// moved by hand ([Clock]), and [FakeDriver], an in-memory
// [compute.Driver] that moves guests and disks between simulated hosts as
// the XenServer driver does, with fault injection and a call log.
package computetest
