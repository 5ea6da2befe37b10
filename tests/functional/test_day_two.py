"""Day two against the real control plane (the session's, support.session): runs after the first one.

- Switching the stack mode, install -> existing -> install, with playbooks/stack.yml: after each
  switch the releases and objects of the collection in the cluster are the plan (the render index
  of the same settings), the inventory ConfigMap is the plan, a second run changes nothing, and
  look-alikes planted in another namespace under the same names (without the collection's label,
  and a Helm release of the same name) survive. ``--check --diff`` before a switch lists exactly
  what the switch then prunes.
- An interrupted run: an upgrade behind a helm that hangs (the test chart's ``testChartHang``) is
  killed by PID with its playbook; the release is left pending-upgrade. The next run with
  agw_obs_recover_pending=false fails naming the release and the fix; the next one rolls it back,
  says so, and converges. The killed run's lock lapses by itself (a short agw_obs_lock_lease).
- One run at a time: a lock held by another run makes a run wait, then fail naming the holder;
  a claim that lapses while a run waits is taken over; two runs started together both succeed,
  their Helm upgrades one after the other.

The charts are TEST charts (support.chartrepo) under the upstream names and pinned versions. NodePorts
are cluster-wide and the plane is shared: this module's are its own (30281-30283).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import time

import pytest
import yaml
from kubernetes import client, config, dynamic
from kubernetes.client.rest import ApiException
from kubernetes.dynamic.resource import ResourceList

from ansible_collections.agentgateway.observability.plugins.module_utils import site_lock
from ansible_collections.agentgateway.observability.plugins.plugin_utils import inventory as inv

from support.cluster_snapshot import IGNORED_KINDS
from support.fixtures import REPO, VENV_BIN, ansible_env, render_playbook
from support.kube import apply_site, helm
from support.tools import tool

pytestmark = pytest.mark.services

STACK = REPO / "playbooks" / "stack.yml"
OPERATOR_CRDS = ("monitoring.coreos.com_podmonitors.yaml", "monitoring.coreos.com_prometheusrules.yaml")
PORTS = {"prometheus_node_port": 30281, "grafana_node_port": 30282, "tempo_query_node_port": 30283}
EXISTING = {"agw_obs_stack_mode": "existing", "existing_stack_prometheus_labels": {"release": "kps"},
            "existing_stack_tempo_datasource_url": "http://tempo.observability.svc.cluster.local:3200"}


# ---- helpers ---------------------------------------------------------------------------------

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


def planned(render_dir):
    """The labels of every release and object of a render (its index), as the inventory names them."""
    entries = yaml.safe_load((render_dir / "index.yaml").read_text(encoding="utf-8"))["entries"]
    out = []
    for entry in entries:
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


def hanging_helm(tmp_path):
    """(program, pids): a helm whose upgrades hang (``testChartHang``: a Deployment no node runs); each logs its PID."""
    pids, program = tmp_path / "helm-pids", tmp_path / "helm-hangs"
    program.write_text(
        "#!/bin/bash\n"
        'if [[ " $* " == *" upgrade "* ]]; then\n'
        '  echo $$ >> %(pids)s\n'
        '  exec %(helm)s "$@" --set testChartHang=true\n'
        "fi\n"
        'exec %(helm)s "$@"\n' % {"pids": pids, "helm": tool("helm")}, encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, pids


def logging_helm(tmp_path):
    """(program, log): a helm that logs when each upgrade starts and ends, and takes 2 s longer."""
    log, program = tmp_path / "helm-upgrades.log", tmp_path / "helm-logs"
    program.write_text(
        "#!/bin/bash\n"
        'if [[ " $* " == *" upgrade "* ]]; then\n'
        '  echo "start $(date +%%s.%%N)" >> %(log)s; sleep 2\n'
        '  %(helm)s "$@"; rc=$?\n'
        '  echo "end $(date +%%s.%%N)" >> %(log)s; exit $rc\n'
        "fi\n"
        'exec %(helm)s "$@"\n' % {"log": log, "helm": tool("helm")}, encoding="utf-8")
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, log


def site_command(variables, args=()):
    cmd = [str(VENV_BIN / "ansible-playbook"), str(REPO / "site.yml")]
    for key, value in variables.items():
        cmd += ["-e", yaml.safe_dump({key: value}, default_flow_style=True).strip()]
    return cmd + list(args)


def apply_variables(kubeconfig, **more):
    variables = {"agw_obs_kubeconfig": str(kubeconfig), "agw_obs_wait": False, "traffic_enabled": False,
                 "verification_enabled": False, "agw_obs_helm_binary": tool("helm")}
    variables.update(more)
    return variables


def kill(pid):
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


# ---- switching the stack mode ----------------------------------------------------------------

@pytest.fixture(scope="module")
def operator_crds(verification_cluster, schemas_dir):
    """The prometheus-operator CRDs, as a cluster running kube-prometheus-stack has them (where missing)."""
    verification_cluster.crds(schemas_dir / "prometheus-operator" / name for name in OPERATOR_CRDS)


def test_switching_the_stack_mode_prunes_the_other_mode_and_nothing_else(
        controlplane, test_chart_repo, operator_crds, verification_cluster, module_namespace, tmp_path):
    kubeconfig, ns = controlplane.kubeconfig_path, module_namespace
    other = ns + "-other"
    install = dict(PORTS, agw_obs_monitoring_namespace=ns, agw_obs_gateway_namespace=ns + "-gateway",
                   agw_obs_chart_repository_mirror=test_chart_repo["url"],
                   grafana_admin_password_file=str(tmp_path / "grafana-password"))
    existing = dict(install, **EXISTING)

    # look-alikes: the same names in another namespace, without the collection's label, and a release
    verification_cluster.namespace(other)
    look_alikes = [
        {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tempo-query-nodeport", "namespace": other},
         "spec": {"ports": [{"port": 3200}]}},
        {"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "grafana-admin", "namespace": other}},
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "agentgateway-datasource-tempo",
                                                               "namespace": other}},
    ]
    for obj in look_alikes:
        verification_cluster.apply(obj)
    helm(kubeconfig, "install", "tempo", "tempo", "--repo", test_chart_repo["url"], "--version",
         _chart_version(test_chart_repo, "tempo"), "-n", other)
    planted = sorted(["Service %s/tempo-query-nodeport" % other, "Secret %s/grafana-admin" % other,
                      "ConfigMap %s/agentgateway-datasource-tempo" % other, "release %s/tempo" % other])

    def plan_of(settings, name):
        render = tmp_path / name
        render_playbook(STACK, render, settings)
        return planned(render)

    def converge(settings, plan):
        first = apply_site(kubeconfig, settings, playbook=STACK)
        assert ours_in_cluster(kubeconfig, [ns, ns + "-gateway"]) == plan, first.stdout[-3000:]
        assert labels_of(held_inventory(kubeconfig, ns)) == plan, "the inventory is the plan"
        second = apply_site(kubeconfig, settings, playbook=STACK, args=("--diff",))
        assert recap(second.stdout) == {"changed": 0, "failed": 0}, second.stdout[-3000:]
        assert reported(second.stdout, "pruned") == []
        survivors = [label for label in planted if label.startswith("release ")] + sorted(
            "%s %s/%s" % (o["kind"], other, o["metadata"]["name"]) for o in look_alikes
            if _exists(verification_cluster, o))
        assert sorted(survivors) == planted, "a look-alike was touched"
        return first

    install_plan, existing_plan = plan_of(install, "install"), plan_of(existing, "existing")
    assert "release %s/tempo" % ns in install_plan and "PodMonitor %s/agentgateway-proxy" % ns in existing_plan

    converge(install, install_plan)

    # install -> existing: the dry run names exactly what the switch removes
    dry = apply_site(kubeconfig, existing, playbook=STACK, args=("--check", "--diff"))
    would = reported(dry.stdout, "would prune")
    assert labels_of(held_inventory(kubeconfig, ns)) == install_plan, "check mode writes no inventory"
    switched = converge(existing, existing_plan)
    pruned = reported(switched.stdout, "pruned")
    assert pruned == would, (pruned, would)
    assert pruned == sorted(set(install_plan) - set(existing_plan)), pruned
    assert {"release %s/prometheus" % ns, "release %s/tempo" % ns, "release %s/grafana" % ns} <= set(pruned)

    # existing -> install
    back = converge(install, install_plan)
    assert reported(back.stdout, "pruned") == sorted(set(existing_plan) - set(install_plan))

    # cleanup: what the collection created goes (the inventory too); the look-alikes stay
    apply_site(kubeconfig, dict(install, agw_obs_state="absent"), playbook=STACK)
    assert ours_in_cluster(kubeconfig, [ns]) == []
    assert held_inventory(kubeconfig, ns) is None
    helm(kubeconfig, "uninstall", "tempo", "-n", other)


def _exists(cluster, obj):
    resource = cluster.dynamic.resources.get(api_version=obj["apiVersion"], kind=obj["kind"])
    try:
        resource.get(name=obj["metadata"]["name"], namespace=obj["metadata"]["namespace"])
    except ApiException as exc:
        if exc.status == 404:
            return False
        raise
    return True


def _chart_version(repo, name):
    import urllib.request  # pylint: disable=import-outside-toplevel

    with urllib.request.urlopen(repo["url"].rstrip("/") + "/index.yaml", timeout=10) as answer:
        return yaml.safe_load(answer.read())["entries"][name][0]["version"]


# ---- an interrupted run ----------------------------------------------------------------------

def test_a_release_an_interrupted_run_left_pending_is_rolled_back_and_named(
        controlplane, test_chart_repo, module_namespace, tmp_path, monkeypatch):
    monkeypatch.setenv("ANSIBLE_ASYNC_DIR", str(tmp_path / "async"))
    kubeconfig, ns = controlplane.kubeconfig_path, module_namespace + "-int"
    variables = apply_variables(
        kubeconfig, agw_obs_monitoring_namespace=ns, agw_obs_gateway_namespace=ns,
        agw_obs_chart_repository_mirror=test_chart_repo["url"], tempo_query_node_port=30284,
        agw_obs_wait=True, agw_obs_wait_timeout="10m", agw_obs_lock_lease="6s")
    tags = ("--tags", "tempo")
    apply_site(kubeconfig, variables, args=tags)
    assert release_status(kubeconfig, ns, "tempo") == ("deployed", 1)

    # an upgrade that hangs; the playbook and its helm are killed by PID, as a lost CI runner would be
    program, pids = hanging_helm(tmp_path)
    changed = dict(variables, tempo_extra_values={"day": "two"})
    env = ansible_env()
    env["ANSIBLE_ASYNC_DIR"] = str(tmp_path / "async")
    with open(tmp_path / "interrupted.log", "w", encoding="utf-8") as out:
        proc = subprocess.Popen(site_command(dict(changed, agw_obs_helm_binary=str(program)), tags), cwd=REPO,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while release_status(kubeconfig, ns, "tempo")[0] != "pending-upgrade":
            assert proc.poll() is None, (tmp_path / "interrupted.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the upgrade never started"
            time.sleep(0.5)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        for pid in pids.read_text().split() if pids.exists() else []:
            kill(int(pid))  # the background job's helm outlives the playbook: stopped by PID
    assert release_status(kubeconfig, ns, "tempo") == ("pending-upgrade", 2)

    # recovery off: the run fails, naming the release and the fix (after the killed run's lock lapsed)
    refused = apply_site(kubeconfig, dict(changed, agw_obs_recover_pending=False), args=tags, check=False)
    assert refused.returncode != 0
    assert "release %s/tempo is pending-upgrade" % ns in refused.stdout, refused.stdout[-3000:]
    assert "agw_obs_recover_pending=true" in refused.stdout and "helm rollback" in refused.stdout
    assert release_status(kubeconfig, ns, "tempo") == ("pending-upgrade", 2), "nothing changed"

    # recovery on: rolled back to revision 1, said so, then the upgrade goes through
    recovered = apply_site(kubeconfig, changed, args=tags)
    assert reported(recovered.stdout, "recovered") == [
        "release %s/tempo: was pending-upgrade, rolled back to revision 1" % ns], recovered.stdout[-3000:]
    status, revision = release_status(kubeconfig, ns, "tempo")
    assert status == "deployed" and revision == 4, (status, revision)  # 3 is the rollback
    values = yaml.safe_load(helm(kubeconfig, "get", "values", "tempo", "-n", ns, "-o", "yaml"))
    assert values["day"] == "two"
    again = apply_site(kubeconfig, changed, args=tags)
    assert recap(again.stdout) == {"changed": 0, "failed": 0}, again.stdout[-3000:]
    apply_site(kubeconfig, dict(changed, agw_obs_state="absent"), args=tags)
    assert release_status(kubeconfig, ns, "tempo") == (None, None)


# ---- one run at a time -----------------------------------------------------------------------

def lease_api(kubeconfig):
    return client.CoordinationV1Api(api(kubeconfig))


def plant_lease(kubeconfig, namespace, seconds):
    """The lock, as another run on another machine holds it, renewed now."""
    body = site_lock.lease_body("someone@elsewhere pid 1", seconds, site_lock.utcnow(),
                                {"host": "elsewhere", "user": "someone", "started": "2026-12-03T09:00:00Z"})
    leases = lease_api(kubeconfig)
    try:
        current = leases.read_namespaced_lease(site_lock.LOCK_NAME, namespace)
        body["metadata"]["resourceVersion"] = current.metadata.resource_version
        leases.replace_namespaced_lease(site_lock.LOCK_NAME, namespace, body)
    except ApiException as exc:
        if exc.status != 404:
            raise
        leases.create_namespaced_lease(namespace, body)


def lease_holder(kubeconfig, namespace):
    try:
        return lease_api(kubeconfig).read_namespaced_lease(site_lock.LOCK_NAME, namespace).spec.holder_identity
    except ApiException as exc:
        if exc.status == 404:
            return None
        raise


def test_one_run_at_a_time(controlplane, test_chart_repo, verification_cluster, module_namespace, tmp_path,
                           monkeypatch):
    monkeypatch.setenv("ANSIBLE_ASYNC_DIR", str(tmp_path / "async"))
    kubeconfig, ns = controlplane.kubeconfig_path, module_namespace + "-lock"
    verification_cluster.namespace(ns)
    program, log = logging_helm(tmp_path)
    variables = apply_variables(kubeconfig, agw_obs_monitoring_namespace=ns, agw_obs_gateway_namespace=ns,
                                agw_obs_chart_repository_mirror=test_chart_repo["url"], tempo_query_node_port=30285,
                                agw_obs_helm_binary=str(program), agw_obs_lock_timeout="3s")
    tags = ("--tags", "tempo")

    # held by another run: this one waits agw_obs_lock_timeout, then fails naming the holder; nothing changed
    plant_lease(kubeconfig, ns, 300)
    started = time.monotonic()
    refused = apply_site(kubeconfig, variables, args=tags, check=False)
    assert refused.returncode != 0 and time.monotonic() - started >= 3
    assert ("another run holds the lock %s/agentgateway-observability-lock: someone@elsewhere pid 1 (host elsewhere; "
            "user someone; started 2026-12-03T09:00:00Z; its claim lapses at" % ns) in refused.stdout, \
        refused.stdout[-3000:]
    assert "agw_obs_lock_timeout" in refused.stdout
    assert release_status(kubeconfig, ns, "tempo") == (None, None)
    assert lease_holder(kubeconfig, ns) == "someone@elsewhere pid 1", "another run's lock is never released"

    # the holder's claim lapses while this run waits (a run that was killed): taken over, then given back
    plant_lease(kubeconfig, ns, 6)
    apply_site(kubeconfig, dict(variables, agw_obs_lock_timeout="60s"), args=tags)
    assert release_status(kubeconfig, ns, "tempo")[0] == "deployed"
    assert lease_holder(kubeconfig, ns) is None, "the lock is given back at the end"

    # two runs at once, each changing the release: both go through, one after the other
    log.unlink()
    env = ansible_env()
    env["ANSIBLE_ASYNC_DIR"] = str(tmp_path / "async")
    procs = []
    for run in ("a", "b"):
        out = open(tmp_path / ("run-%s.log" % run), "w", encoding="utf-8")  # pylint: disable=consider-using-with
        procs.append((subprocess.Popen(site_command(dict(variables, agw_obs_lock_timeout="120s",
                                                         tempo_extra_values={"run": run}), tags),
                                       cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT), out))
    for proc, out in procs:
        assert proc.wait(timeout=300) == 0, open(out.name, encoding="utf-8").read()[-3000:]
        out.close()
    edges = [line.split() for line in log.read_text(encoding="utf-8").splitlines()]
    assert [edge for edge, _when in edges] == ["start", "end", "start", "end"], edges
    assert lease_holder(kubeconfig, ns) is None
    assert release_status(kubeconfig, ns, "tempo")[1] == 3
    apply_site(kubeconfig, dict(variables, agw_obs_state="absent"), args=tags)
