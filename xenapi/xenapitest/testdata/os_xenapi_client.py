"""Drive a XenAPI endpoint with the official Python client from os-xenapi.

Usage: os_xenapi_client.py URL USER PASSWORD VM_NAME HALTED_VM NETWORK

Logs in, lists VMs with VM.get_all_records, shuts VM_NAME down with
Async.VM.clean_shutdown and follows the task, gives HALTED_VM a VIF on
NETWORK, starts, suspends and resumes it, reading the host's free memory
along the way, provokes HANDLE_INVALID and
VM_BAD_POWER_STATE, logs out and provokes SESSION_INVALID, then prints one
JSON object with everything it saw.
"""
import json
import sys
import time

from os_xenapi.client import XenAPI


def failure(fn):
    try:
        fn()
    except XenAPI.Failure as f:
        return list(f.details)
    return None


def main():
    url, user, password, vm_name, halted_name, network_name = sys.argv[1:7]
    out = {}
    session = XenAPI.Session(url)
    session.login_with_password(user, password, "1.0", "xenflow-python-test")
    x = session.xenapi
    out["api_version"] = session.API_version
    handle = session.handle
    out["handle"] = handle

    records = x.VM.get_all_records()
    out["vms"] = sorted(
        [r["name_label"], r["power_state"], r["is_control_domain"], r["memory_static_max"]]
        for r in records.values())
    ref = [k for k, r in records.items() if r["name_label"] == vm_name][0]
    out["vm_ref"] = ref

    task = x.Async.VM.clean_shutdown(ref)
    out["task_is_ref"] = task.startswith("OpaqueRef:")
    deadline = time.time() + 30
    while x.task.get_status(task) == "pending" and time.time() < deadline:
        time.sleep(0.01)
    out["task_status"] = x.task.get_status(task)
    out["task_progress"] = x.task.get_progress(task)
    out["task_result"] = x.task.get_result(task)
    out["task_error_info"] = x.task.get_error_info(task)
    x.task.destroy(task)
    out["power_state_after"] = x.VM.get_power_state(ref)

    # The halted VM: a VIF on the pool's network, a start, a suspend to an
    # image of its memory size, a resume; free memory along the way.
    halted = [k for k, r in records.items() if r["name_label"] == halted_name][0]
    network = x.network.get_by_name_label(network_name)[0]
    vif = x.VIF.create({"device": "0", "network": network, "VM": halted, "MAC": "",
                        "MTU": "1500", "other_config": {}, "qos_algorithm_type": "",
                        "qos_algorithm_params": {}})
    out["vifs"] = x.VM.get_VIFs(halted) == [vif]
    host = x.session.get_this_host(handle)
    metrics = x.host.get_metrics(host)
    x.VM.start(halted, False, False)
    out["vif_attached"] = x.VIF.get_currently_attached(vif)
    out["free_running"] = [x.host.compute_free_memory(host), x.host_metrics.get_memory_free(metrics)]
    x.VM.suspend(halted)
    image = x.VM.get_suspend_VDI(halted)
    out["suspend_image"] = [x.VM.get_power_state(halted), x.VDI.get_type(image), x.VDI.get_virtual_size(image)]
    out["free_suspended"] = [x.host.compute_free_memory(host), x.host_metrics.get_memory_free(metrics)]
    x.VM.resume(halted, False, False)
    out["resumed"] = [x.VM.get_power_state(halted), x.VM.get_suspend_VDI(halted)]

    out["handle_invalid"] = failure(lambda: x.VM.get_record("OpaqueRef:bad"))
    out["bad_power_state"] = failure(lambda: x.VM.clean_shutdown(ref))
    out["param_count"] = failure(lambda: x.VM.get_record())

    session.xenapi.session.logout()
    # The session object forgets its handle on logout, so call the
    # endpoint directly with the old one to see the server's answer.
    raw = getattr(session, "VM.get_all")(handle)
    out["after_logout"] = raw

    print(json.dumps(out))


if __name__ == "__main__":
    main()
