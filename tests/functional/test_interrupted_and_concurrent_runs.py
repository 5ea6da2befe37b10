"""Interrupted and concurrent runs against the real control plane (the session's, support.session).

- An interrupted run: an upgrade behind a helm that hangs (the test chart's ``testChartHang``) is
  killed by PID with its playbook; the release is left pending-upgrade. The next run with
  agw_obs_recover_pending=false fails naming the release and the fix; the next one rolls it back,
  says so, and converges. The killed run's lock lapses by itself (a short agw_obs_lock_lease).
- One run at a time: a lock held by another run makes a run wait, then fail naming the holder; a
  claim that lapses while a run waits is taken over; two runs started together both succeed, their
  Helm upgrades one after the other.

site.yml with ``--tags tempo`` (the smallest part with a release). The charts are TEST charts
(support.chartrepo); this module's NodePorts are its own (30284, 30285).
"""

from __future__ import annotations

import os
import signal
import subprocess
import time

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from ansible_collections.agentgateway.observability.plugins.module_utils import site_lock

from support.day_two import (
    api,
    hanging_helm,
    kill,
    logging_helm,
    release_status,
    reported,
    site_command,
)
from support.fixtures import REPO, ansible_env
from support.kube import apply_site, apply_variables, helm

pytestmark = pytest.mark.services


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
    # (this module's namespaces stay: the session's control plane goes at its end; a second run's
    # "no change" and the removal are the switch test's)


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
