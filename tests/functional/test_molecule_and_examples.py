"""The molecule kind scenario (syntax; its full run needs Docker, see molecule/kind/README.md) and the
example of roles included in an existing ops play (render mode, and apply mode against the real
control plane with the test chart repository)."""

from __future__ import annotations

import json
import os
import re
import subprocess

import pytest
import yaml

from support.controlplane import CONTEXT
from support.fixtures import REPO, VENV_BIN, ansible_env, load_rendered, render_playbook, run_playbook
from support.kube import helm
from support.tools import tool

KIND_SCENARIO = REPO / "molecule" / "kind"


def molecule(tmp_path, *args):
    env = ansible_env(MOLECULE_EPHEMERAL_DIRECTORY=str(tmp_path / "ephemeral"), MOLECULE_GLOB="molecule/*/molecule.yml",
                      NO_COLOR="1", ANSIBLE_CONFIG="")
    env.pop("ANSIBLE_CONFIG")   # molecule writes its own ansible.cfg for the scenario
    proc = subprocess.run([str(VENV_BIN / "molecule")] + list(args), cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
    proc.stdout += proc.stderr
    return proc


def test_molecule_syntax_of_the_kind_scenario(tmp_path):
    proc = molecule(tmp_path, "syntax", "-s", "kind")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"kind\s*: actions=1\s+successful=1 .* failed=0", proc.stdout), proc.stdout[-4000:]
    assert "playbook: %s" % (KIND_SCENARIO / "converge.yml") in proc.stdout


def test_the_base_config_serves_the_apiserver_scenario_too(tmp_path):
    proc = molecule(tmp_path, "syntax", "-s", "apiserver")
    assert proc.returncode == 0, proc.stdout[-4000:]
    assert re.search(r"apiserver\s*: actions=1\s+successful=1 .* failed=0", proc.stdout), proc.stdout[-4000:]


def test_the_kind_scenario_runs_every_step():
    config = yaml.safe_load((KIND_SCENARIO / "molecule.yml").read_text())
    assert config["scenario"]["test_sequence"] == [
        "syntax", "create", "converge", "idempotence", "verify", "cleanup", "destroy"]
    base = yaml.safe_load((REPO / ".config" / "molecule" / "config.yml").read_text())
    assert base["driver"] == {"name": "default", "options": {"managed": False}}


def test_every_playbook_of_the_kind_scenario_passes_the_syntax_check(tmp_path):
    # molecule's syntax step checks converge.yml only; create, verify, cleanup and destroy too
    playbooks = sorted(p for p in KIND_SCENARIO.glob("*.yml") if p.name != "molecule.yml")
    assert [p.name for p in playbooks] == ["cleanup.yml", "converge.yml", "create.yml", "destroy.yml", "verify.yml"]
    for playbook in playbooks:
        proc = subprocess.run([str(VENV_BIN / "ansible-playbook"), "--syntax-check", str(playbook)], cwd=REPO,
                              env=ansible_env(), capture_output=True, text=True, timeout=120, check=False)
        assert proc.returncode == 0, (playbook.name, proc.stdout + proc.stderr)


def test_the_workflow_runs_the_kind_scenario_and_keeps_the_reports():
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "molecule-kind.yml").read_text())
    steps = workflow["jobs"]["kind"]["steps"]
    runs = " ".join(step.get("run", "") for step in steps)
    assert "molecule test -s kind" in runs and "make setup" in runs
    uploads = [s for s in steps if str(s.get("uses", "")).startswith("actions/upload-artifact@")]
    assert uploads and uploads[0]["if"] == "always()"
    assert ".cache/reports/kind" in uploads[0]["with"]["path"]


EXAMPLE = REPO / "playbooks" / "examples" / "ops_play_with_roles.yml"


def test_roles_included_in_an_existing_ops_play_render(tmp_path):
    proc = render_playbook(EXAMPLE, tmp_path)
    # the play's own tasks ran around the roles; its k8s task is for apply mode only
    assert "Maintenance window opened" in proc.stdout and "Rendered into %s" % tmp_path in proc.stdout
    index = load_rendered(tmp_path, "index.yaml")
    assert {e["role"] for e in index["entries"]} == {"prometheus", "tempo"}
    tempo = load_rendered(tmp_path, os.path.join("helm", "monitoring", "tempo.yaml"))
    assert "72h" in yaml.safe_dump(tempo["values"])   # the play's own setting for the role


def helm_releases(kubeconfig, namespace):
    return sorted(r["name"] for r in json.loads(helm(kubeconfig, "list", "-n", namespace, "-o", "json")))


@pytest.mark.services
def test_the_ops_play_applies_with_the_kubeconfig_and_context_of_module_defaults(controlplane, test_chart_repo):
    # agw_obs_kubeconfig and agw_obs_kube_context stay empty: only module_defaults name the control plane
    # (there is no ~/.kube/config to fall back on), for the collection's modules and for kubernetes.core's.
    kubeconfig = controlplane.kubeconfig_path
    settings = {"ops_kubeconfig": str(kubeconfig), "ops_kube_context": CONTEXT,
                "agw_obs_chart_repository_mirror": test_chart_repo["url"], "agw_obs_wait": False,
                "agw_obs_helm_binary": tool("helm")}
    wrong = run_playbook(EXAMPLE, dict(settings, ops_kube_context="no-such-context"), check=False)
    assert wrong.returncode != 0 and "no-such-context" in wrong.stdout, wrong.stdout[-3000:]
    assert helm_releases(kubeconfig, "monitoring") == []

    proc = run_playbook(EXAMPLE, settings)
    assert helm_releases(kubeconfig, "monitoring") == ["prometheus", "tempo"]
    # the play's own kubernetes.core.k8s_info found Tempo's query NodePort Service
    assert "1 Services in the monitoring namespace." in proc.stdout, proc.stdout[-3000:]

    run_playbook(EXAMPLE, dict(settings, agw_obs_state="absent"))
    assert helm_releases(kubeconfig, "monitoring") == []


def test_the_ops_play_refuses_an_unknown_action_group(tmp_path):
    # module_defaults names real groups: a typo in a group name fails instead of being ignored
    source = EXAMPLE.read_text()
    broken = tmp_path / "broken.yml"
    broken.write_text(source.replace("group/agentgateway.observability.observability", "group/agentgateway.observability.nope"))
    proc = render_playbook(broken, tmp_path / "r", check=False)
    assert proc.returncode != 0
    assert "agentgateway.observability.nope" in proc.stdout
