"""The molecule scenarios (their syntax, steps and wiring; `make molecule` runs default and apiserver,
the kind scenario needs Docker, see molecule/kind/README.md) and the example of roles included in an
existing ops play (render mode, and apply mode against the session's real control plane with the
test chart repository)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from support import planner
from support.controlplane import CONTEXT
from support.fixtures import REPO, VENV_BIN, ansible_env, load_rendered, render_playbook, snapshot
from support.kube import helm
from support.tasks import included_task_files
from support.tools import tool

SCENARIOS = REPO / "molecule"
KIND_SCENARIO = SCENARIOS / "kind"
EXAMPLE = REPO / "playbooks" / "examples" / "ops_play_with_roles.yml"


def molecule(tmp_path, *args):
    env = ansible_env(MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"), MOLECULE_GLOB="molecule/*/molecule.yml",
                      NO_COLOR="1", ANSIBLE_CONFIG="")
    env.pop("ANSIBLE_CONFIG")   # molecule writes its own ansible.cfg for the scenario
    proc = subprocess.run([str(VENV_BIN / "molecule")] + list(args), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    proc.stdout += proc.stderr
    return proc


def scenario_playbooks():
    """Every playbook of every scenario (molecule.yml is a config, not a playbook)."""
    return sorted(p for p in SCENARIOS.glob("*/*.yml") if p.name != "molecule.yml")


@pytest.mark.parametrize("scenario", ["kind", "apiserver"])
def test_molecule_syntax_with_the_base_config(tmp_path, scenario):
    """The real molecule, as `make molecule` calls it for kind (whose full run needs Docker): the scenario
    loads with the shared base config .config/molecule/config.yml and passes its syntax step. (`make
    molecule` runs default and apiserver in full.)"""
    proc = molecule(tmp_path, "syntax", "-s", scenario)
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"%s\s*: actions=1\s+successful=1 .* failed=0" % scenario, proc.stdout), proc.stdout[-4000:]
    assert "playbook: %s" % (SCENARIOS / scenario / "converge.yml") in proc.stdout


def test_every_playbook_of_every_scenario_passes_the_syntax_check():
    """molecule's syntax step checks converge.yml only: create, prepare, side_effect, verify, cleanup and
    destroy go through ansible-playbook --syntax-check too (one run for all of them)."""
    playbooks = scenario_playbooks()
    assert sorted(p.name for p in KIND_SCENARIO.glob("*.yml") if p.name != "molecule.yml") == [
        "cleanup.yml", "converge.yml", "create.yml", "destroy.yml", "verify.yml"]
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check"] + [str(p) for p in playbooks],
                          cwd=REPO, env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    for playbook in playbooks:
        assert "playbook: %s" % playbook in proc.stdout, playbook


def test_the_scenarios_and_the_example_include_only_task_files_that_exist():
    """A tasks_from of include_role is resolved when the task runs, so the syntax check passes on a
    task file that is gone (molecule/kind/verify.yml named agw_obs's removed node_ports_check.yml)."""
    found = []
    for playbook in scenario_playbooks() + [EXAMPLE]:
        for short, tasks_from in included_task_files([playbook]):
            found.append((playbook.name, short, tasks_from))
            assert (REPO / "roles" / short / "tasks" / ("%s.yml" % tasks_from)).is_file(), (playbook, short, tasks_from)
    assert ("verify.yml", "agw_obs", "plan_site") in found, found


def test_the_kind_scenario_creates_its_cluster_before_the_kubeconfig_exists(tmp_path):
    """molecule/kind/create.yml in check mode, with stand-ins for kind and docker (a container engine is
    not here): vars/scenario.yml names the kubeconfig kind writes as agw_obs_kubeconfig for every step,
    so the create step must get past the site's plan to the cluster creation while that file is missing."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "kind").write_text('#!/bin/sh\n[ "$1" = version ] && echo "kind v0.32.0 go1.26.0 linux/amd64"\nexit 0\n')
    (bin_dir / "docker").write_text("#!/bin/sh\nexit 0\n")   # `docker info` answers
    for stand_in in bin_dir.iterdir():
        stand_in.chmod(0o755)
    env = ansible_env(MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"), MOLECULE_PROJECT_DIRECTORY=str(REPO),
                      PATH="%s:%s:%s" % (bin_dir, VENV_BIN, os.environ.get("PATH", "")))
    proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--check", str(KIND_SCENARIO / "create.yml"),
                           "--inventory", str(REPO / "playbooks" / "inventory" / "localhost.yml"),
                           "-e", "kind_cluster_kind_binary=%s" % (bin_dir / "kind")],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = proc.stdout + proc.stderr
    assert not (tmp_path / "ephemeral" / "kubeconfig").exists()
    assert proc.returncode == 0, output[-3000:]
    assert "TASK [agentgateway.observability.kind_cluster : Create kind cluster agw-obs-molecule]" in output


def test_the_scenarios_run_every_step():
    base = yaml.safe_load((REPO / ".config" / "molecule" / "config.yml").read_text())
    assert base["driver"] == {"name": "default", "options": {"managed": False}}
    sequences = {s: yaml.safe_load((SCENARIOS / s / "molecule.yml").read_text())["scenario"]["test_sequence"]
                 for s in ("kind", "default", "apiserver")}
    assert sequences["kind"] == ["syntax", "create", "converge", "idempotence", "verify", "cleanup", "destroy"]
    assert sequences["default"] == ["destroy", "syntax", "create", "converge", "idempotence", "verify", "destroy"]
    assert sequences["apiserver"] == ["destroy", "syntax", "create", "prepare", "converge", "idempotence",
                                      "side_effect", "verify", "cleanup", "destroy"]


def test_the_workflow_runs_the_kind_scenario_and_keeps_the_reports():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "molecule-kind.yml").read_text())
    steps = workflow["jobs"]["kind"]["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert "molecule test -s kind" in runs and "make setup" in runs
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0]["if"] == "always()"
    assert ".cache/reports/kind" in uploads[0]["with"]["path"]


def test_roles_included_in_an_existing_ops_play_render(tmp_path):
    """The example play, run by ansible-playbook (the include_role wiring only a play has: each role's
    main.yml plans it and deploys it alone, the play's own vars for one role): its files are byte for
    byte the files the in-process plan of the two roles gives with the play's Tempo setting."""
    proc = render_playbook(EXAMPLE, tmp_path)
    # the play's own tasks ran around the roles; its k8s task is for apply mode only
    assert "Maintenance window opened" in proc.stdout and "Rendered into %s" % tmp_path in proc.stdout
    index = load_rendered(tmp_path, "index.yaml")
    assert {e["role"] for e in index["entries"]} == {"prometheus", "tempo"}
    tempo = load_rendered(tmp_path, os.path.join("helm", "monitoring", "tempo.yaml"))
    assert tempo["values"]["tempo"]["retention"] == "72h"   # the play's own setting for the role
    rendered = {path: text.decode() for path, text in snapshot(tmp_path).items() if path != "index.yaml"}
    assert rendered == planner.documents({"tempo_retention": "72h"}, roles=["prometheus", "tempo"])


def test_the_ops_play_refuses_an_unknown_action_group(tmp_path):
    # module_defaults names real groups: a typo in a group name fails instead of being ignored
    source = EXAMPLE.read_text()
    broken = tmp_path / "broken.yml"
    broken.write_text(source.replace("group/agentgateway.observability.observability",
                                     "group/agentgateway.observability.nope"))
    proc = render_playbook(broken, tmp_path / "r", check=False)
    assert proc.returncode != 0
    assert "agentgateway.observability.nope" in proc.stdout


def helm_releases(kubeconfig, namespace):
    return sorted(r["name"] for r in json.loads(helm(kubeconfig, "list", "-n", namespace, "-o", "json")))


def run_ops_play(tmp_path, settings, check=True):
    """ansible-playbook on the example with no kubeconfig to fall back on: HOME is empty and neither
    KUBECONFIG nor K8S_AUTH_* is set, so the cluster comes from module_defaults or nowhere."""
    cmd = [str(VENV_BIN / "ansible-playbook"), str(EXAMPLE), "-e", json.dumps(settings)]
    env = {k: v for k, v in ansible_env(HOME=str(tmp_path / "home")).items()
           if k != "KUBECONFIG" and not k.startswith("K8S_AUTH_")}
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600, check=False)
    proc.stdout += proc.stderr
    if check:
        assert proc.returncode == 0, proc.stdout[-6000:]
    return proc


@pytest.mark.services
def test_the_ops_play_applies_with_the_kubeconfig_and_context_of_module_defaults(
        controlplane, test_chart_repo, module_namespace, tmp_path):
    """Apply mode against the session's real control plane (support.session), in namespaces of this
    module's own, with the test charts (support.chartrepo) and the real helm. agw_obs_kubeconfig and
    agw_obs_kube_context stay empty: only the play's module_defaults name the control plane, for the
    collection's modules and for the play's own kubernetes.core.k8s_info. A wrong context there fails
    before anything is applied; the same play with agw_obs_state=absent removes what it applied."""
    kubeconfig = controlplane.kubeconfig_path
    monitoring = module_namespace + "-monitoring"
    settings = {"ops_kubeconfig": str(kubeconfig), "ops_kube_context": CONTEXT,
                "agw_obs_monitoring_namespace": monitoring, "agw_obs_gateway_namespace": module_namespace + "-gateway",
                # a NodePort is cluster-wide: one no other module of the shared control plane uses
                "tempo_query_node_port": 30271, "prometheus_node_port": 30270,
                "agw_obs_chart_repository_mirror": test_chart_repo["url"], "agw_obs_wait": False,
                "agw_obs_helm_binary": tool("helm")}
    wrong = run_ops_play(tmp_path, dict(settings, ops_kube_context="no-such-context"), check=False)
    assert wrong.returncode != 0 and "no-such-context" in wrong.stdout, wrong.stdout[-3000:]
    assert helm_releases(kubeconfig, monitoring) == []

    try:
        proc = run_ops_play(tmp_path, settings)
        assert helm_releases(kubeconfig, monitoring) == ["prometheus", "tempo"]
        # the play's own kubernetes.core.k8s_info found Tempo's query NodePort Service
        assert "1 Services in the monitoring namespace." in proc.stdout, proc.stdout[-3000:]
    finally:
        run_ops_play(tmp_path, dict(settings, agw_obs_state="absent"))
    assert helm_releases(kubeconfig, monitoring) == []
