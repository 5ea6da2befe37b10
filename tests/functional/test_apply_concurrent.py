"""The Prometheus, Tempo and Loki releases installed at the same time (agw_obs_concurrent_releases),
through kubernetes.core.helm and the real helm 3.17.2, against the real control plane.

The charts are TEST charts from the local repository (support.chartrepo). To see whether the
releases overlap, agw_obs_helm_binary points at a small program that runs the real helm and logs
when each ``helm ... upgrade -i`` (kubernetes.core.helm installs and upgrades with it, global flags
first) starts and ends, holding each one a few seconds: the test charts install in well under a
second, about as long as Ansible takes to start a background job, so without the hold one after
the other and at the same time could not be told apart.
Each test uses a namespace of its own and deletes it at the end (removal through the site is
tested in test_apply_helm.py and the apiserver scenario).
"""

from __future__ import annotations

import json
import stat
import time

import pytest
from kubernetes import client, config
from kubernetes.client.rest import ApiException

from support.kube import apply_site, helm
from support.tools import tool

pytestmark = pytest.mark.services

ROLES = ("prometheus", "tempo", "loki")
HOLD_SECONDS = 6


def timed_helm(tmp_path):
    """(program, log): a helm that runs the real one and logs each upgrade's start and end."""
    log = tmp_path / "helm-upgrades.log"
    program = tmp_path / "helm"
    program.write_text(
        "#!/bin/bash\n"
        'if [[ " $* " == *" upgrade "* ]]; then\n'
        '  echo "start $(date +%%s.%%N) $*" >> %(log)s\n'
        "  sleep %(hold)d\n"
        '  %(helm)s "$@"; rc=$?\n'
        '  echo "end $(date +%%s.%%N) $*" >> %(log)s\n'
        "  exit $rc\n"
        "fi\n"
        'exec %(helm)s "$@"\n' % {"log": log, "hold": HOLD_SECONDS, "helm": tool("helm")},
        encoding="utf-8",
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return program, log


def upgrades(log):
    """{release: (start, end)} of every helm upgrade logged, the release named by its role."""
    spans = {}
    if not log.exists():
        return spans
    for line in log.read_text(encoding="utf-8").splitlines():
        edge, when, command = line.split(" ", 2)
        release = next(word for word in command.split() if word in ROLES)
        spans.setdefault(release, [None, None])[0 if edge == "start" else 1] = float(when)
    return {release: tuple(span) for release, span in spans.items()}


def releases(kubeconfig, namespace):
    found = json.loads(helm(kubeconfig, "list", "-n", namespace, "-o", "json"))
    return {r["name"]: r["status"] for r in found}


def delete_namespace(kubeconfig, namespace, timeout=120):
    """Delete ``namespace`` (releases and all) and wait until it is gone, so its NodePorts are free again."""
    core = client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig), persist_config=False))
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            core.read_namespace(namespace)
        except ApiException as exc:
            if exc.status == 404:
                return
            raise
        time.sleep(1)
    raise AssertionError("namespace %s still there after %d s" % (namespace, timeout))


def settings(test_chart_repo, program, namespace, **more):
    values = {"agw_obs_chart_repository_mirror": test_chart_repo["url"], "agw_obs_wait": True,
              "agw_obs_wait_timeout": "60s", "agw_obs_loki_enabled": True,
              "agw_obs_monitoring_namespace": namespace, "agw_obs_helm_binary": str(program)}
    values.update(more)
    return values


TAGS = ("--tags", ",".join(ROLES))
TEMPO_SERVICE = "core/Service %s/tempo-query-nodeport"


def test_releases_installed_together_idempotent_and_no_job_left(controlplane, test_chart_repo, cluster_snapshot,
                                                                tmp_path, monkeypatch):
    async_dir = tmp_path / "async"
    monkeypatch.setenv("ANSIBLE_ASYNC_DIR", str(async_dir))
    kubeconfig = controlplane.kubeconfig_path
    program, log = timed_helm(tmp_path)
    variables = settings(test_chart_repo, program, "obs-together")

    first = apply_site(kubeconfig, variables, args=TAGS)
    assert "Install concurrently the releases of prometheus, tempo, loki" in first.stdout
    assert releases(kubeconfig, "obs-together") == dict.fromkeys(ROLES, "deployed")
    spans = upgrades(log)
    assert sorted(spans) == sorted(ROLES), spans
    latest_start = max(start for start, _end in spans.values())
    earliest_end = min(end for _start, end in spans.values())
    assert latest_start < earliest_end, "the three upgrades did not overlap: %s" % spans
    assert TEMPO_SERVICE % "obs-together" in cluster_snapshot(), "Tempo's objects follow its release"
    # The jobs ran from ANSIBLE_ASYNC_DIR (async_wrapper creates it), and every one was waited for and
    # its result file (the module's result) removed
    assert async_dir.is_dir(), "the background jobs did not use ANSIBLE_ASYNC_DIR"
    assert sorted(p.name for p in async_dir.iterdir()) == []

    log.unlink()
    again = apply_site(kubeconfig, variables, args=TAGS)
    assert " changed=0 " in again.stdout, again.stdout[-3000:]
    assert upgrades(log) == {}, "an unchanged release is not upgraded"

    delete_namespace(kubeconfig, "obs-together")


def test_one_release_failing_names_it_and_the_others_still_install(controlplane, test_chart_repo, cluster_snapshot,
                                                                   tmp_path):
    kubeconfig = controlplane.kubeconfig_path
    program, log = timed_helm(tmp_path)
    variables = settings(test_chart_repo, program, "obs-together-fail", tempo_extra_values={"testChartFail": True})

    broken = apply_site(kubeconfig, variables, args=TAGS, check=False)
    assert broken.returncode != 0
    assert "kubernetes.core.helm failed for release obs-together-fail/tempo (role tempo)" in broken.stdout
    assert ("installed alongside: release obs-together-fail/prometheus (role prometheus), "
            "release obs-together-fail/loki (role loki)") in broken.stdout
    found = releases(kubeconfig, "obs-together-fail")
    assert found.get("prometheus") == "deployed" and found.get("loki") == "deployed", found
    assert "tempo" not in found, "the failed install was rolled back (atomic)"
    assert sorted(upgrades(log)) == sorted(ROLES)
    assert TEMPO_SERVICE % "obs-together-fail" not in cluster_snapshot(), "nothing after a failed release"

    delete_namespace(kubeconfig, "obs-together-fail")


def test_one_after_the_other_when_turned_off(controlplane, test_chart_repo, tmp_path):
    kubeconfig = controlplane.kubeconfig_path
    program, log = timed_helm(tmp_path)
    variables = settings(test_chart_repo, program, "obs-serial", agw_obs_concurrent_releases=False)

    run = apply_site(kubeconfig, variables, args=TAGS)
    assert "Install concurrently the releases" not in run.stdout
    spans = sorted(upgrades(log).values())
    assert len(spans) == 3, spans
    assert all(spans[i][1] <= spans[i + 1][0] for i in range(2)), "the upgrades overlapped: %s" % spans

    delete_namespace(kubeconfig, "obs-serial")
