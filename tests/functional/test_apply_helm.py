"""Helm releases in apply mode, through kubernetes.core.helm and the real helm 3.17.2, against the real
control plane (the session's, support.session), in this module's own namespace.

The deploy action installs the releases in waves: wave n holds every role's n-th release, run
together as background jobs (Ansible's async machinery) when agw_obs_concurrent_releases is on.
With ``--tags prometheus,tempo,loki,grafana`` the site's first wave holds all four. The charts are
TEST charts from the local repository (support.chartrepo) under the upstream names and pinned
versions, reached through agw_obs_chart_repository_mirror. With waiting on (the test chart has
nothing that needs a node to become ready) releases are atomic: a release whose upgrade fails is
rolled back to the last good revision, values included.

To see whether the releases overlap, agw_obs_helm_binary points at a small program that runs the
real helm and logs when each ``helm ... upgrade -i`` (kubernetes.core.helm installs and upgrades
with it) and ``helm uninstall`` starts and ends. The test charts install in about a second, about
as long as Ansible takes to start a background job, so each is held until every one of the wave
has started (at most a few seconds): releases handled together pass at once and overlap; releases
handled one after the other each wait out the hold and cannot overlap.

One lifecycle, four runs of site.yml: installed together, the same again (no change), an upgrade
that fails (named with the releases alongside, rolled back, nothing applied after it), removed one
after the other (agw_obs_concurrent_releases=false).
"""

from __future__ import annotations

import base64
import json
import stat

import pytest
import yaml
from kubernetes import client, config

from support.kube import apply_site, helm
from support.tools import tool

pytestmark = pytest.mark.services

ROLES = ("prometheus", "tempo", "loki", "grafana")
TAGS = ("--tags", ",".join(ROLES))
# How long an upgrade waits for the others of its wave (on a loaded machine Ansible took 15 s to start
# four background jobs): only upgrades that do not run together wait it out.
BARRIER_SECONDS = 60
# Tempo's query Service: NodePorts are cluster-wide and the plane is shared, so ports no other module uses.
NODE_PORTS = {"first": 30261, "moved": 30262}


def timed_helm(tmp_path):
    """(program, log, hold): a helm that runs the real one and logs each upgrade's and uninstall's start and end.

    ``hold(count, seconds)`` empties the log and sets how many logged starts each upgrade or uninstall
    waits for (at most ``seconds``) before it runs.
    """
    log, barrier = tmp_path / "helm-upgrades.log", tmp_path / "helm-barrier"
    program = tmp_path / "helm"
    program.write_text(
        "#!/bin/bash\n"
        'if [[ " $* " == *" upgrade "* || " $* " == *" uninstall "* ]]; then\n'
        '  echo "start $(date +%%s.%%N) $*" >> %(log)s\n'
        "  read -r expected seconds < %(barrier)s\n"
        "  for ((i = 0; i < seconds * 10; i++)); do\n"
        '    (( $(grep -c "^start" %(log)s) >= expected )) && break\n'
        "    sleep 0.1\n"
        "  done\n"
        '  %(helm)s "$@"; rc=$?\n'
        '  echo "end $(date +%%s.%%N) $*" >> %(log)s\n'
        "  exit $rc\n"
        "fi\n"
        'exec %(helm)s "$@"\n' % {"log": log, "barrier": barrier, "helm": tool("helm")},
        encoding="utf-8",
    )
    program.chmod(program.stat().st_mode | stat.S_IXUSR)

    def hold(count, seconds):
        barrier.write_text("%d %d\n" % (count, seconds), encoding="utf-8")
        if log.exists():
            log.unlink()
    return program, log, hold


def spans(log, verb):
    """{release: (start, end)} of every ``helm <verb>`` logged, the release named by its role."""
    found = {}
    if not log.exists():
        return found
    for line in log.read_text(encoding="utf-8").splitlines():
        edge, when, command = line.split(" ", 2)
        if verb in command.split():
            release = next(word for word in command.split() if word in ROLES)
            found.setdefault(release, [None, None])[0 if edge == "start" else 1] = float(when)
    return {release: tuple(span) for release, span in found.items()}


def upgrades(log):
    return spans(log, "upgrade")


def uninstalls(log):
    return spans(log, "uninstall")


def releases(kubeconfig, namespace):
    found = json.loads(helm(kubeconfig, "list", "-n", namespace, "-o", "json"))
    return {r["name"]: r for r in found}


def settings(test_chart_repo, program, namespace, tmp_path, **more):
    values = {"agw_obs_chart_repository_mirror": test_chart_repo["url"], "agw_obs_wait": True,
              "agw_obs_wait_timeout": "60s", "agw_obs_loki_enabled": True,
              "agw_obs_monitoring_namespace": namespace, "agw_obs_gateway_namespace": namespace,
              "agw_obs_helm_binary": str(program), "grafana_admin_password_file": str(tmp_path / "grafana-password")}
    values.update(more)
    return values


def core_api(kubeconfig):
    return client.CoreV1Api(config.new_client_from_config(config_file=str(kubeconfig), persist_config=False))


def tempo_node_port(kubeconfig, namespace):
    return core_api(kubeconfig).read_namespaced_service("tempo-query-nodeport", namespace).spec.ports[0].node_port


def test_installed_together_idempotent_rolled_back_and_removed(controlplane, test_chart_repo, cluster_snapshot,
                                                               module_namespace, tmp_path, monkeypatch):
    async_dir = tmp_path / "async"
    monkeypatch.setenv("ANSIBLE_ASYNC_DIR", str(async_dir))
    kubeconfig, namespace = controlplane.kubeconfig_path, module_namespace
    program, log, hold = timed_helm(tmp_path)
    variables = settings(test_chart_repo, program, namespace, tmp_path, tempo_query_node_port=NODE_PORTS["first"])
    assert cluster_snapshot({namespace}) == set()

    # 1. the first wave: the four releases installed together
    hold(len(ROLES), BARRIER_SECONDS)
    first = apply_site(kubeconfig, variables, args=TAGS)
    assert "TASK [agentgateway.observability.agw_obs : Check the plan, then render or apply " \
           "prometheus, tempo, loki, grafana]" in first.stdout, first.stdout[-3000:]
    installed = releases(kubeconfig, namespace)
    assert {name: r["status"] for name, r in installed.items()} == dict.fromkeys(ROLES, "deployed")
    assert installed["prometheus"]["chart"] == "prometheus-29.27.0"
    together = upgrades(log)
    assert sorted(together) == sorted(ROLES), together
    latest_start = max(start for start, _end in together.values())
    earliest_end = min(end for _start, end in together.values())
    assert latest_start < earliest_end, "the upgrades did not overlap: %s" % together
    # each role's objects: grafana's before its release (the Secret with the password the deploy
    # action generated into grafana_admin_password_file), Tempo's after
    created = cluster_snapshot({namespace})
    assert {"core/Namespace %s" % namespace, "core/Secret %s/grafana-admin" % namespace,
            "core/Service %s/tempo-query-nodeport" % namespace} <= created, sorted(created)
    password_file = tmp_path / "grafana-password"
    assert stat.S_IMODE(password_file.stat().st_mode) == 0o600
    secret = core_api(kubeconfig).read_namespaced_secret("grafana-admin", namespace)
    assert base64.b64decode(secret.data["admin-password"]).decode() == password_file.read_text().split()[0]
    # The jobs ran from ANSIBLE_ASYNC_DIR (async_wrapper creates it), and every one was waited for and
    # its result file (the module's result) removed
    assert async_dir.is_dir(), "the background jobs did not use ANSIBLE_ASYNC_DIR"
    assert sorted(p.name for p in async_dir.iterdir()) == []

    # 2. the same settings again: nothing changes, no release is upgraded
    hold(1, 0)
    again = apply_site(kubeconfig, variables, args=TAGS)
    assert " changed=0 " in again.stdout, again.stdout[-3000:]
    assert upgrades(log) == {}, "an unchanged release is not upgraded"
    assert {name: r["revision"] for name, r in releases(kubeconfig, namespace).items()} == \
        {name: r["revision"] for name, r in installed.items()}

    # 3. Tempo's upgrade fails: named with the releases of its wave, rolled back (atomic), and the
    # objects after the releases are not applied (Tempo's Service keeps its node port)
    hold(1, 0)
    broken = apply_site(kubeconfig, dict(variables, tempo_extra_values={"testChartFail": True},
                                         tempo_query_node_port=NODE_PORTS["moved"]), args=TAGS, check=False)
    assert broken.returncode != 0
    assert "kubernetes.core.helm failed for release %s/tempo (role tempo)" % namespace in broken.stdout
    assert ("installed alongside: release {0}/prometheus (role prometheus), release {0}/loki (role loki), "
            "release {0}/grafana (role grafana)".format(namespace)) in broken.stdout, broken.stdout[-3000:]
    assert sorted(upgrades(log)) == ["tempo"], "only the changed release is upgraded"
    history = json.loads(helm(kubeconfig, "history", "tempo", "-n", namespace, "-o", "json"))
    assert [h["status"] for h in history][-2:] == ["failed", "deployed"], history
    assert "Rollback to %s" % installed["tempo"]["revision"] in history[-1]["description"]
    values = yaml.safe_load(helm(kubeconfig, "get", "values", "tempo", "-n", namespace, "-o", "yaml"))
    assert "testChartFail" not in (values or {}), "the rolled-back release has the last good values"
    assert tempo_node_port(kubeconfig, namespace) == NODE_PORTS["first"], "nothing after a failed release"
    assert {name: r["status"] for name, r in releases(kubeconfig, namespace).items()} == \
        dict.fromkeys(ROLES, "deployed")

    # 4. removal, one release after the other (agw_obs_concurrent_releases=false): the releases, the
    # objects and the namespace the collection created
    serial_async_dir = tmp_path / "async-serial"
    monkeypatch.setenv("ANSIBLE_ASYNC_DIR", str(serial_async_dir))
    hold(len(ROLES), 1)
    apply_site(kubeconfig, dict(variables, agw_obs_state="absent", agw_obs_concurrent_releases=False), args=TAGS)
    assert releases(kubeconfig, namespace) == {}
    assert cluster_snapshot({namespace}) == set()
    removed = sorted(uninstalls(log).values())
    assert len(removed) == len(ROLES), removed
    assert all(removed[i][1] <= removed[i + 1][0] for i in range(len(removed) - 1)), \
        "the removals overlapped: %s" % removed
    assert not serial_async_dir.exists(), "no release ran as a background job"
