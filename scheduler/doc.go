// Package scheduler chooses the compute host for an instance the way
// OpenStack Nova's filter scheduler does, and does it fast enough that a
// control plane of 10,000 hosts never waits on it.
//
// It owns Nova's selection semantics, with no I/O: the host states and
// the request come from the caller, randomness is injected (WithRand).
//
//   - Hosts: a HostSet is a validated, indexed copy of the HostStates
//     (Nova's host manager cache). Select never changes it; Consume
//     applies a placement to it.
//   - Candidates: the requested destination, then ignore_hosts (host
//     names compared case-insensitively, every node of the host), then
//     force_hosts/force_nodes; forced hosts skip the filters.
//   - Filters run in Config.EnabledFilters order and stop when no host is
//     left: ComputeFilter, AvailabilityZoneFilter, RamFilter, CoreFilter,
//     DiskFilter (the pre-placement rules with allocation ratios),
//     ComputeCapabilitiesFilter (flavor extra specs scoped
//     "capabilities:" against the host's attributes, with the operators
//     of nova/scheduler/filters/extra_specs_ops.py), ImagePropertiesFilter,
//     SameHostFilter, DifferentHostFilter, ServerGroupAffinityFilter,
//     ServerGroupAntiAffinityFilter, IoOpsFilter, NumInstancesFilter and
//     RetryFilter. The filters Nova marks run_filter_once_per_request run
//     for the first instance only.
//   - Default filters: Nova's defaults from before Placement (Ocata:
//     RetryFilter, AvailabilityZoneFilter, RamFilter, DiskFilter,
//     ComputeFilter, ComputeCapabilitiesFilter, ImagePropertiesFilter,
//     ServerGroupAntiAffinityFilter, ServerGroupAffinityFilter) with
//     CoreFilter. Nova Zed's shorter list relies on Placement to claim
//     RAM, disk and vCPUs and on its request filters for the availability
//     zone; a scheduler without Placement that used it would place a
//     2 GiB instance on a host with 100 MiB free, or in the wrong zone.
//     CoreFilter is added because nothing else here counts vCPUs. The
//     default RAM allocation ratio is 1.0 (DefaultRAMAllocationRatio):
//     xapi does not overcommit memory.
//   - Weighers: RAMWeigher, DiskWeigher, CPUWeigher, IoOpsWeigher,
//     BuildFailureWeigher, CrossCellWeigher and the two server-group soft
//     weighers. Raw weights are clamped to minval/maxval, normalised to
//     [0, 1] over the hosts (min-max; all equal gives 0), multiplied by
//     the configured multiplier or the smallest per-aggregate override,
//     and summed in weigher order; hosts are sorted by total, highest
//     first, equal totals keeping their order.
//   - Selection: a random choice among the host_subset_size best (after
//     shuffling the hosts tied with the best weight when
//     shuffle_best_same_weighed_hosts is set), moved to the front; for a multi-create the chosen host's resources are
//     consumed before the next pick (consume_from_request) and the group
//     learns the host; alternates are up to max_attempts-1 hosts of the
//     chosen host's cell that were not selected.
//   - Failure: a *NoValidHostError says, filter by filter, how many hosts
//     were removed; bad input is a *BadInputError naming the field.
//
// Filters and weighers are small interfaces (Filter, Weigher), so a
// caller can add its own with WithFilter and WithWeigher; Config names
// them like the built-ins. The built-ins are evaluated on a packed copy of
// the hosts in one pass for the filters and one for the weights, with
// per-request scratch space reused through a pool: a selection allocates
// nothing in proportion to the number of hosts.
//
// The results equal Nova's own code (python3-nova, Zed): the tests feed
// random documents to both and compare hosts, order, selections,
// alternates and weights (to 1e-9). Zed no longer ships RamFilter,
// CoreFilter, DiskFilter and RetryFilter; for those the test states
// each rule as Nova's last version applied it, inside Nova's own
// filter handler, weighers and selection code. The package scheduler/schedjson reads
// and writes the JSON documents of examples/schedule.
package scheduler
