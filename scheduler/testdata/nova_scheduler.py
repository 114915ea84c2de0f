#!/usr/bin/python3
"""Run Nova's own scheduler code on the JSON documents of examples/schedule.

Usage:
  nova_scheduler.py < doc.json           one document in, one result out
  nova_scheduler.py --cases < cases.json  {"cases": [doc, ...]} in,
                                          {"results": [result, ...]} out
  nova_scheduler.py --time N < doc.json   time N selections, print
                                          {"runs_ms": [...], "median_ms": m}

It loads Nova's filters, weighers, HostState, RequestSpec and the
SchedulerManager's selection code (the placement-free path,
_legacy_find_hosts, which the placement path equals when every claim
succeeds) from the installed python3-nova, with oslo.config defaults, and
no database or RPC.

Nova Zed no longer ships RamFilter, CoreFilter, DiskFilter (removed in
Train) and RetryFilter (removed in Victoria). When the installed Nova lacks
one, LEGACY_FILTERS below states its rule as Nova's last version of it
applied it (the overcommit limit total x ratio less what is used, and no
instance larger than the whole host; tried (host, node) pairs from
RequestSpec.retry), as a filter on the installed BaseHostFilter, so the
rest of the run (filter handler, weighers, selection, consumption between
picks) is still Nova's own code. A document may carry "_choices": the numbers the Go
side drew (for host_subset_size and shuffle_best_same_weighed_hosts),
replayed here instead of random.choice and random.shuffle.
"""

import datetime
import json
import logging
import statistics
import sys
import time
import uuid

from nova import conf as nova_conf
from nova import context as nova_context
from nova import exception
from nova import objects
from nova.scheduler import filters as nova_filters
from nova.scheduler import host_manager
from nova.scheduler import manager as nova_manager
from nova.scheduler import weights as nova_weights

CONF = nova_conf.CONF
NS = uuid.UUID('6ba7b811-9dad-11d1-80b4-00c04fd430c8')

MULTIPLIERS = [
    'ram_weight_multiplier', 'disk_weight_multiplier', 'cpu_weight_multiplier',
    'io_ops_weight_multiplier', 'build_failure_weight_multiplier',
    'cross_cell_move_weight_multiplier', 'soft_affinity_weight_multiplier',
    'soft_anti_affinity_weight_multiplier',
]
# The Go package's default enabled_filters: Nova's pre-Placement defaults
# (Ocata) with CoreFilter.
DEFAULT_FILTERS = ['RetryFilter', 'AvailabilityZoneFilter', 'RamFilter',
                   'DiskFilter', 'CoreFilter', 'ComputeFilter',
                   'ComputeCapabilitiesFilter', 'ImagePropertiesFilter',
                   'ServerGroupAntiAffinityFilter', 'ServerGroupAffinityFilter']


def cell_uuid(name):
    return str(uuid.uuid5(NS, 'cell:' + name))


def configure(cfg):
    for k in list(CONF.filter_scheduler):
        CONF.clear_override(k, group='filter_scheduler')
    CONF.clear_override('max_attempts', group='scheduler')
    CONF.clear_override('default_availability_zone')
    for k in MULTIPLIERS + ['host_subset_size', 'max_io_ops_per_host',
                            'shuffle_best_same_weighed_hosts',
                            'max_instances_per_host',
                            'image_properties_default_architecture']:
        if k in cfg:
            CONF.set_override(k, cfg[k], group='filter_scheduler')
    if 'max_attempts' in cfg:
        CONF.set_override('max_attempts', cfg['max_attempts'], group='scheduler')
    if 'default_availability_zone' in cfg:
        CONF.set_override('default_availability_zone',
                          cfg['default_availability_zone'])


def fits(total, free, ratio, want):
    """The pre-Placement RAM and disk rule: no instance larger than the
    whole host, and room under the overcommit limit total x ratio."""
    if total < want:
        return False
    return total * ratio - (total - free) >= want


class RamFilter(nova_filters.BaseHostFilter):
    RUN_ON_REBUILD = False

    def host_passes(self, host_state, spec_obj):
        return fits(host_state.total_usable_ram_mb, host_state.free_ram_mb,
                    host_state.ram_allocation_ratio, spec_obj.memory_mb)


class CoreFilter(nova_filters.BaseHostFilter):
    RUN_ON_REBUILD = False

    def host_passes(self, host_state, spec_obj):
        total = host_state.vcpus_total
        if not total:
            return True  # no vCPU count reported: assumed broken, passes
        want = spec_obj.vcpus
        limit = total * host_state.cpu_allocation_ratio
        if limit > 0 and want > total:
            return False
        return not (limit - host_state.vcpus_used < want)


class DiskFilter(nova_filters.BaseHostFilter):
    RUN_ON_REBUILD = False

    def host_passes(self, host_state, spec_obj):
        want = 1024 * (spec_obj.root_gb + spec_obj.ephemeral_gb) + spec_obj.swap
        return fits(host_state.total_usable_disk_gb * 1024,
                    host_state.free_disk_mb,
                    host_state.disk_allocation_ratio, want)


class RetryFilter(nova_filters.BaseHostFilter):
    RUN_ON_REBUILD = False

    def host_passes(self, host_state, spec_obj):
        retry = spec_obj.retry
        if not retry:
            return True
        tried = [[cn.host, cn.hypervisor_hostname] for cn in retry.hosts]
        return [host_state.host, host_state.nodename] not in tried


LEGACY_FILTERS = {'RamFilter': RamFilter, 'CoreFilter': CoreFilter,
                  'DiskFilter': DiskFilter,
                  'RetryFilter': RetryFilter}
FILTER_CLASSES = dict(LEGACY_FILTERS)
FILTER_CLASSES.update({c.__name__: c for c in nova_filters.all_filters()})
# The filters of this list that stand in for ones the installed Nova lacks.
RESTATED = [n for n, c in FILTER_CLASSES.items() if c in LEGACY_FILTERS.values()]
WEIGHER_CLASSES = {c.__name__: c for c in nova_weights.all_weighers()}


def make_host(h, now):
    hs = host_manager.HostState(h['host'], h.get('node') or h['host'],
                                cell_uuid(h.get('cell', '')))
    hs.uuid = str(uuid.uuid5(NS, 'node:%s/%s' % (hs.host, hs.nodename)))
    hs.total_usable_ram_mb = h['total_usable_ram_mb']
    hs.free_ram_mb = h['free_ram_mb']
    hs.total_usable_disk_gb = h['total_usable_disk_gb']
    hs.free_disk_mb = h['free_disk_mb']
    hs.vcpus_total = h['vcpus_total']
    hs.vcpus_used = h.get('vcpus_used', 0)
    hs.num_io_ops = h.get('num_io_ops', 0)
    hs.num_instances = h.get('num_instances', 0)
    hs.failed_builds = h.get('failed_builds', 0)
    # Floats, as Nova's ComputeNode fields are (str() of them is what
    # ComputeCapabilitiesFilter matches); the defaults are the Go side's.
    hs.ram_allocation_ratio = float(h.get('ram_allocation_ratio', 1.0))
    hs.cpu_allocation_ratio = float(h.get('cpu_allocation_ratio', 16.0))
    hs.disk_allocation_ratio = float(h.get('disk_allocation_ratio', 1.0))
    hs.hypervisor_type = h.get('hypervisor_type')
    hs.hypervisor_version = h.get('hypervisor_version', 0)
    # What ComputeCapabilitiesFilter sees as cpu_info: the libvirt form's
    # JSON object, with the architecture only.
    if h.get('cpu_arch'):
        hs.cpu_info = json.dumps({'arch': h['cpu_arch']})
    if 'supported_instances' in h:
        hs.supported_instances = [tuple(t) for t in h['supported_instances']]
    else:
        t = (h.get('cpu_arch', ''), h.get('hypervisor_type', ''),
             h.get('vm_mode', ''))
        hs.supported_instances = [t] if any(t) else []
    aggs = []
    if h.get('availability_zone'):
        aggs.append(objects.Aggregate(
            id=0, name='az', hosts=[hs.host],
            metadata={'availability_zone': h['availability_zone']}))
    for i, a in enumerate(h.get('aggregates') or []):
        aggs.append(objects.Aggregate(id=i + 1, name=a.get('name', ''),
                                      hosts=[hs.host],
                                      metadata=a.get('metadata') or {}))
    hs.aggregates = aggs
    hs.instances = {u: objects.Instance(uuid=u) for u in h.get('instances') or []}
    seen = now if h.get('up', True) else now - datetime.timedelta(hours=1)
    hs.service = {'disabled': not h.get('enabled', True),
                  'disabled_reason': None, 'forced_down': False,
                  'last_seen_up': seen, 'created_at': seen,
                  'host': hs.host, 'binary': 'nova-compute'}
    return hs


def make_spec(r):
    f = r.get('flavor') or {}
    flavor = objects.Flavor(memory_mb=f.get('memory_mb', 0),
                            vcpus=f.get('vcpus', 0),
                            root_gb=f.get('root_gb', 0),
                            ephemeral_gb=f.get('ephemeral_gb', 0),
                            swap=f.get('swap', 0))
    if 'extra_specs' in f:
        flavor.extra_specs = dict(f['extra_specs'])
    kw = dict(
        flavor=flavor,
        num_instances=r.get('num_instances') or len(r.get('instance_uuids') or []) or 1,
        image=objects.ImageMeta.from_dict(
            {'properties': r.get('image_properties') or {}}),
        availability_zone=r.get('availability_zone') or None,
        ignore_hosts=r.get('ignore_hosts') or None,
        force_hosts=r.get('force_hosts') or None,
        force_nodes=r.get('force_nodes') or None,
        # The instance being moved; a fresh UUID stands for "none" (the
        # field cannot be None in a RequestSpec).
        instance_uuid=r.get('instance_uuid') or str(uuid.uuid4()),
        # Set so that consume_from_request does not fail on a lazy load
        # (it would log a warning and skip the I/O-ops count).
        pci_requests=objects.InstancePCIRequests(requests=[]),
        numa_topology=None,
    )
    hints = r.get('scheduler_hints') or {}
    sh = {}
    for k in ('same_host', 'different_host'):
        if k in hints and hints[k] is not None:
            v = hints[k]
            sh[k] = [v] if isinstance(v, str) else list(v)
    kw['scheduler_hints'] = sh
    g = r.get('instance_group')
    if g:
        rules = {}
        if g.get('max_server_per_host'):
            rules['max_server_per_host'] = str(g['max_server_per_host'])
        kw['instance_group'] = objects.InstanceGroup(
            uuid=str(uuid.uuid4()), policy=g['policy'],
            policies=[g['policy']], hosts=list(g.get('hosts') or []),
            members=list(g.get('members') or []), rules=rules)
    else:
        kw['instance_group'] = None
    dest = {}
    if r.get('requested_cell'):
        dest['cell'] = objects.CellMapping(uuid=cell_uuid(r['requested_cell']))
        dest['allow_cross_cell_move'] = bool(r.get('allow_cross_cell_move'))
    if r.get('requested_host'):
        dest['host'] = r['requested_host']
        dest['node'] = r.get('requested_node') or None
    kw['requested_destination'] = objects.Destination(**dest) if dest else None
    tried = r.get('tried_hosts') or []
    kw['retry'] = None
    if tried:
        kw['retry'] = objects.SchedulerRetries(
            num_attempts=len(tried) + 1,
            hosts=objects.ComputeNodeList(objects=[
                objects.ComputeNode(host=t['host'], hypervisor_hostname=t['node'])
                if isinstance(t, dict) else
                objects.ComputeNode(host=t[0], hypervisor_hostname=t[1])
                for t in tried]))
    return objects.RequestSpec(**kw)


class Recorder(object):
    """Wraps a filter to record the hosts it removes."""

    def __init__(self, flt, removed):
        self.flt = flt
        self.removed = removed
        self.run_filter_once_per_request = flt.run_filter_once_per_request

    def run_filter_for_index(self, index):
        return self.flt.run_filter_for_index(index)

    def filter_all(self, objs, spec):
        objs = list(objs)
        kept = list(self.flt.filter_all(objs, spec))
        ids = {id(o) for o in kept}
        name = self.flt.__class__.__name__
        for o in objs:
            if id(o) not in ids:
                self.removed.setdefault(name, []).append(o.host)
        return kept


def build(doc, record, skip_missing=False):
    cfg = doc.get('config') or {}
    configure(cfg)
    names = cfg['enabled_filters'] if 'enabled_filters' in cfg else DEFAULT_FILTERS
    # Without a list, Nova's own default: every weigher it ships, which
    # adds MetricsWeigher and PCIWeigher (both weigh 0 for these hosts).
    wnames = (cfg['weighers'] if 'weighers' in cfg
              else [c.__name__ for c in nova_weights.all_weighers()])
    if skip_missing:
        # Timing only: leave out the filters Nova no longer ships.
        names = [n for n in names if n not in RESTATED]
    removed = {}
    hm = host_manager.HostManager.__new__(host_manager.HostManager)
    hm.filter_handler = nova_filters.HostFilterHandler()
    hm.enabled_filters = [FILTER_CLASSES[n]() for n in names]
    if record:
        hm.enabled_filters = [Recorder(f, removed) for f in hm.enabled_filters]
    hm.weight_handler = nova_weights.HostWeightHandler()
    hm.weighers = [WEIGHER_CLASSES[n]() for n in wnames]
    mgr = nova_manager.SchedulerManager.__new__(nova_manager.SchedulerManager)
    mgr.host_manager = hm
    return mgr, hm, removed


def run_one(doc):
    mgr, hm, removed = build(doc, True)
    now = datetime.datetime.utcnow()
    hosts = [make_host(h, now) for h in doc['hosts']]
    r = doc.get('request') or {}
    spec = make_spec(r)
    choices = list(doc.get('_choices') or [])

    def choice(seq):
        if len(seq) == 1:
            return seq[0]
        return seq[choices.pop(0)]

    def shuffle(x):  # CPython's random.shuffle, with Go's draws
        for i in reversed(range(1, len(x))):
            j = choices.pop(0)
            x[i], x[j] = x[j], x[i]
    nova_manager.random.choice = choice
    nova_manager.random.shuffle = shuffle

    weighed_calls = []
    orig = hm.get_weighed_hosts

    def get_weighed_hosts(hosts_, spec_obj):
        res = orig(hosts_, spec_obj)
        weighed_calls.append(res)
        return res
    hm.get_weighed_hosts = get_weighed_hosts

    num = spec.num_instances
    num_alts = CONF.scheduler.max_attempts - 1
    ctx = nova_context.RequestContext(user_id='u', project_id='p')
    uuids = r.get('instance_uuids') or None
    try:
        sels = mgr._legacy_find_hosts(ctx, num, spec, hosts, num_alts,
                                      instance_uuids=uuids)
    except exception.NoValidHost as e:
        return {'error': str(e), 'filtered_out': removed}
    out = {'weighed': [{'host': w.obj.host, 'node': w.obj.nodename,
                        'weight': w.weight} for w in weighed_calls[0]],
           'selected': [], 'alternates': [], 'filtered_out': removed}
    for i, s in enumerate(sels):
        host = s[0]
        weight = None
        for w in weighed_calls[i]:
            if w.obj.host == host.service_host and w.obj.nodename == host.nodename:
                weight = w.weight
        out['selected'].append({'host': host.service_host,
                                'node': host.nodename, 'weight': weight})
        out['alternates'].append([{'host': a.service_host, 'node': a.nodename}
                                  for a in s[1:]])
    return out


class ConsumeFailure(logging.Handler):
    """Turns the warning consume_from_request logs when it fails (and
    otherwise swallows) into an error: the oracle must not hide one."""

    def emit(self, record):
        if 'failed to consume' in record.getMessage():
            raise RuntimeError(record.getMessage())


def run_case(doc):
    try:
        return run_one(doc)
    except Exception:  # reported to the Go test, which shows the case
        import traceback
        return {'exception': traceback.format_exc()}


def time_runs(doc, n):
    mgr, hm, _ = build(doc, False, skip_missing=True)
    r = doc.get('request') or {}
    num_alts = CONF.scheduler.max_attempts - 1
    ctx = nova_context.RequestContext(user_id='u', project_id='p')
    runs = []
    # The host states are built once, as Nova's HostManager caches them;
    # each run consumes one instance on the chosen host, as in Nova.
    now = datetime.datetime.utcnow()
    hosts = [make_host(h, now) for h in doc['hosts']]
    for _ in range(n):
        spec = make_spec(r)
        t0 = time.perf_counter()
        mgr._legacy_find_hosts(ctx, spec.num_instances, spec, hosts, num_alts,
                               instance_uuids=r.get('instance_uuids') or None)
        runs.append((time.perf_counter() - t0) * 1000.0)
    return {'runs_ms': runs, 'median_ms': statistics.median(runs),
            'filters': [f.__class__.__name__ for f in hm.enabled_filters],
            'weighers': [w.__class__.__name__ for w in hm.weighers],
            'hosts': len(hosts)}


def main():
    logging.disable(logging.INFO)
    logging.getLogger('nova').setLevel(logging.ERROR)
    hm_log = logging.getLogger('nova.scheduler.host_manager')
    hm_log.setLevel(logging.WARNING)
    hm_log.addHandler(ConsumeFailure())
    hm_log.propagate = False
    CONF([], project='nova', default_config_files=[])
    objects.register_all()
    doc = json.load(sys.stdin)
    if len(sys.argv) > 2 and sys.argv[1] == '--time':
        res = time_runs(doc, int(sys.argv[2]))
    elif len(sys.argv) > 1 and sys.argv[1] == '--cases':
        res = {'results': [run_case(d) for d in doc['cases']]}
    else:
        res = run_one(doc)
    json.dump(res, sys.stdout)
    sys.stdout.write('\n')


if __name__ == '__main__':
    main()
