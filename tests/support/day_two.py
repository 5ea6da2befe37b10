"""Helpers of the day-two tests (test_stack_mode_switch.py, test_interrupted_and_concurrent_runs.py):
runs of the site against the session's control plane, and what the cluster, Helm and the inventory hold."""

from __future__ import annotations

import json
import os
import re
import signal
import stat

from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.resource import ResourceList

from ansible_collections.agentgateway.observability.plugins.plugin_utils import inventory as inv

from support import planner
from support.cluster_snapshot import IGNORED_KINDS
from support.fixtures import REPO, playbook_command
from support.kube import helm
from support.tools import tool


def recap(output):
    match = re.search(r"localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", output)
    assert match, output[-3000:]
    return {"changed": int(match.group(2)), "failed": int(match.group(4))}


def reported(output, key):
    """The list the deploy's day-two report names ``key`` ("pruned", "would prune", "recovered")."""
    match = re.search(r'"%s": \[(.*?)\]' % re.escape(key), output, re.S)
    return sorted(json.loads("[%s]" % match.group(1))) if match else []


def api(kubeconfig):
    return config.new_client_from_config(config_file=str(kubeconfig), persist_config=False)


def held_inventory(kubeconfig, namespace):
    try:
        cm = client.CoreV1Api(api(kubeconfig)).read_namespaced_config_map(inv.INVENTORY_NAME, namespace)
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise
    return inv.parse({"metadata": {"namespace": namespace}, "data": cm.data})


def labels_of(inventory):
    return sorted(inv.label(kind, e) for kind in ("releases", "objects") for e in inventory[kind])


def planned(settings):
    """The labels of every release and object stack.yml plans for ``settings`` (its roles' real parts,
    support.planner), as the inventory names them: from the render index entries of the same Plans."""
    parts = planner.plan_site(settings, roles=planner.value("agw_obs", "_agw_obs_stack_roles", settings))
    out = []
    for plan in planner.site(parts).plans:
        for entry in plan.index_entries():
            if entry["type"] == "helm_release":
                out.append(inv.label("releases", entry))
            elif entry["type"] == "manifest" and entry["kind"] != "Namespace":
                out.append(inv.label("objects", entry))
    return sorted(out)


def ours_in_cluster(kubeconfig, namespaces):
    """Labels of the objects carrying the collection's label, and of the Helm releases, in ``namespaces``."""
    dyn = dynamic.DynamicClient(api(kubeconfig))
    dyn.resources.invalidate_cache()
    found, seen = set(), set()
    for resource in dyn.resources.search():
        if isinstance(resource, ResourceList) or not resource.namespaced or "/" in resource.name or "list" not in (resource.verbs or []):
            continue
        if resource.kind in IGNORED_KINDS or (resource.group, resource.kind) in seen:
            continue
        seen.add((resource.group, resource.kind))
        for namespace in namespaces:
            items = resource.get(namespace=namespace, label_selector="%s=%s" % (inv.MANAGED_BY_LABEL,
                                                                                inv.MANAGED_BY_VALUE)).items
            for item in items or []:
                if item.metadata.name != inv.INVENTORY_NAME and not item.metadata.ownerReferences:
                    found.add("%s %s/%s" % (resource.kind, namespace, item.metadata.name))
    for namespace in namespaces:
        for rel in json.loads(helm(kubeconfig, "list", "-n", namespace, "-a", "-o", "json")):
            found.add("release %s/%s" % (namespace, rel["name"]))
    return sorted(found)


def release_status(kubeconfig, namespace, name):
    for rel in json.loads(helm(kubeconfig, "list", "-n", namespace, "-a", "-o", "json")):
        if rel["name"] == name:
            return rel["status"], int(rel["revision"])
    return None, None


def _helm_wrapper(program, on_upgrade, **paths):
    """Write ``program``: the real helm, with ``on_upgrade`` (bash, ``%(helm)s`` and ``paths`` filled in) for upgrades."""
    paths["helm"] = tool("helm")
    program.write_text("#!/bin/bash\n"
                       'if [[ " $* " == *" upgrade "* ]]; then\n' + on_upgrade % paths + "fi\n"
                       'exec %(helm)s "$@"\n' % paths, encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program


def hanging_helm(tmp_path):
    """(program, pids): a helm whose upgrades hang (``testChartHang``: a Deployment no node runs); each logs its PID."""
    pids = tmp_path / "helm-pids"
    return _helm_wrapper(tmp_path / "helm-hangs", '  echo $$ >> %(pids)s\n'
                         '  exec %(helm)s "$@" --set testChartHang=true\n', pids=pids), pids


def logging_helm(tmp_path):
    """(program, log): a helm that logs when each upgrade starts and ends, and takes 2 s longer."""
    log = tmp_path / "helm-upgrades.log"
    return _helm_wrapper(tmp_path / "helm-logs", '  echo "start $(date +%%s.%%N)" >> %(log)s; sleep 2\n'
                         '  %(helm)s "$@"; rc=$?\n'
                         '  echo "end $(date +%%s.%%N)" >> %(log)s; exit $rc\n', log=log), log


def site_command(variables, args=()):
    return playbook_command(REPO / "site.yml", variables, args)


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
