"""Apply mode refuses a cluster connection or a helm it cannot work with, before anything changes.

The deploy action checks the connection and helm (module cluster_preflight) after the plan's own
checks and before its first change, and names the setting to fix: agw_obs_kubeconfig,
agw_obs_kube_context or agw_obs_helm_binary (CLUSTER_PROBLEMS in plugins/action/deploy.py).
Everything here is real: the session's control plane (support.session), a closed port, a missing
and a broken kubeconfig, helm 3.17.2 and 4.1.4 (refused: kubernetes.core 6.2 cannot drive Helm 4),
a Python without the kubernetes library.

- One run of site.yml (``--tags prometheus``) proves the wiring from agw_obs_kubeconfig and
  agw_obs_kube_context to the check: an unknown context (the kubeconfig is read: its contexts are
  listed). agw_obs_helm_binary reaches the deploy action in every apply run of test_apply_helm.py
  (its helm logs each release it handles).
- One play calls the deploy action with the prometheus role's real plan (support.planner) for
  every cause, one inventory host per cause (all local, run side by side by Ansible's forks),
  and cluster_preflight once with good settings.
Every plan puts everything in this module's namespace: it must not exist afterwards (its snapshot
is empty before and after), so no cause let a change through.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import yaml

from support import planner
from support.cluster_snapshot import snapshot
from support.fixtures import run_playbook
from support.kube import apply_site, kubeconfig_with
from support.services import free_port
from support.tools import tool

pytestmark = pytest.mark.services


def namespaces(name):
    """The site's namespaces, all this module's own."""
    return {"agw_obs_monitoring_namespace": name, "agw_obs_gateway_namespace": name, "agentgateway_namespace": name}


def assert_refused_by_the_deploy_step(proc, *names):
    assert proc.returncode != 0, proc.stdout[-3000:]
    for name in names:
        assert name in proc.stdout, (name, proc.stdout[-3000:])
    failed_task = proc.stdout.rsplit("TASK [", 1)[1].split("]", 1)[0]
    assert "Check the plan, then render or apply prometheus" in failed_task, proc.stdout[-3000:]


def test_site_names_the_context_the_kubeconfig_does_not_have(controlplane, cluster_snapshot, module_namespace):
    before = cluster_snapshot({module_namespace})
    settings = dict(namespaces(module_namespace), agw_obs_kube_context="kind-prod")
    proc = apply_site(controlplane.kubeconfig_path, settings, args=("--tags", "prometheus"), check=False)
    assert_refused_by_the_deploy_step(proc, "agw_obs_kube_context: context 'kind-prod' is not in kubeconfig %s "
                                      "(it has: agw-obs-controlplane)" % controlplane.kubeconfig_path,
                                      "Set agw_obs_kube_context to one of")
    assert cluster_snapshot({module_namespace}) == before == set()


# ---- every cause, through the deploy action ------------------------------------------------------
def causes(good, folder):
    """{host: (its variables, the cause reported, what the message names)}."""
    closed = kubeconfig_with(folder / "closed", good, server="https://127.0.0.1:%d" % free_port())
    garbage = folder / "garbage"
    garbage.write_text("this: [is not a kubeconfig\n", encoding="utf-8")
    bare = folder / "bare-python"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    helm, helm4, missing = tool("helm"), tool("helm4"), str(folder / "helm")
    good = str(good)

    def case(kubeconfig=good, context="", helm_binary=helm, **more):
        return dict(kubeconfig=str(kubeconfig), context=context, helm=helm_binary, **more)

    return {
        "unreachable": (case(closed), "unreachable",
                        ["agw_obs_kubeconfig=%s, agw_obs_kube_context=(empty" % closed, "cannot be reached",
                         "Start the cluster or fix the server address"]),
        "no-kubeconfig": (case(folder / "nope"), "kubeconfig",
                          ["agw_obs_kubeconfig: ", "%s does not exist" % (folder / "nope"),
                           "Point agw_obs_kubeconfig at a readable"]),
        "not-a-kubeconfig": (case(garbage), "kubeconfig", ["agw_obs_kubeconfig: ", "%s cannot be read" % garbage]),
        "unknown-context": (case(context="kind-prod"), "context",
                            ["agw_obs_kube_context: ", "'kind-prod' is not in kubeconfig", "agw-obs-controlplane"]),
        "no-helm": (case(helm_binary=missing), "helm_missing",
                    ["agw_obs_helm_binary=%s: " % missing, "not found", "Install Helm 3"]),
        "no-helm-on-path": (case(helm_binary="helm-not-installed"), "helm_missing",
                            ["agw_obs_helm_binary=helm-not-installed: ", "not found on PATH"]),
        "helm-4": (case(helm_binary=helm4), "helm_version",
                   ["agw_obs_helm_binary=%s: " % helm4, "is Helm 4.1.4", "needs Helm >= 3.10.0 and < 4.0.0"]),
        "no-kubernetes-library": (case(ansible_python_interpreter=str(bare / "bin" / "python")),
                                  "kubernetes_library",
                                  ["Python library 'kubernetes'", "pip install -r requirements.txt",
                                   str(bare / "bin" / "python")]),
    }


PLAY = """\
- name: The deploy action against every cause (one host each), cluster_preflight with good settings
  hosts: all
  gather_facts: false
  tasks:
    - name: Deploy with a setting the cluster check refuses
      agentgateway.observability.deploy:
        plans: "{{ lookup('ansible.builtin.file', plans_file) | from_json }}"
        kubeconfig: "{{ kubeconfig }}"
        context: "{{ context or omit }}"
        helm_binary: "{{ helm }}"
        wait: false
      when: inventory_hostname != 'good'
      register: refused
      ignore_errors: true

    - name: The same check with good settings
      agentgateway.observability.cluster_preflight:
        kubeconfig: "{{ kubeconfig }}"
        helm_binary: "{{ helm }}"
      when: inventory_hostname == 'good'
      register: passed

    - name: Hand each host's result to the test
      ansible.builtin.copy:
        content: "{{ (passed if inventory_hostname == 'good' else refused) | to_json }}"
        dest: "{{ results_dir }}/{{ inventory_hostname }}.json"
        mode: "0644"
"""


@pytest.fixture(scope="module")
def refused(controlplane, module_namespace, tmp_path_factory):
    """(causes, {host: result}, the namespace's snapshot before, after) of one run of PLAY."""
    folder = tmp_path_factory.mktemp("causes")
    good = controlplane.kubeconfig_path
    table = causes(good, folder)
    hosts = {name: variables for name, (variables, _cause, _names) in table.items()}
    hosts["good"] = {"kubeconfig": str(good), "context": "", "helm": tool("helm")}
    inventory = folder / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {
        "vars": {"ansible_connection": "local", "ansible_python_interpreter": sys.executable},
        "hosts": hosts}}), encoding="utf-8")
    plans_file = folder / "plans.json"
    plans_file.write_text(json.dumps([planner.deployed(planner.plan("prometheus", namespaces(module_namespace)))]),
                          encoding="utf-8")
    playbook = folder / "causes.yml"
    playbook.write_text(PLAY, encoding="utf-8")
    results = folder / "results"
    results.mkdir()

    before = snapshot(str(good), namespaces={module_namespace})
    run_playbook(playbook, {"plans_file": str(plans_file), "results_dir": str(results)},
                 args=("-i", str(inventory), "--forks", str(len(hosts))))
    after = snapshot(str(good), namespaces={module_namespace})
    found = {path.stem: json.loads(path.read_text(encoding="utf-8")) for path in results.iterdir()}
    return table, found, before, after


def assert_named(table, results, name):
    _variables, cause, names = table[name]
    result = results[name]
    assert result.get("failed") and result.get("cause") == cause, (name, result)
    for text in names:
        assert text in result["msg"], (name, text, result["msg"])
    assert "applied" not in result, (name, "the deploy went past its cluster check")


def test_every_cause_is_named_by_the_deploy_action_before_any_change(refused):
    table, results, before, after = refused
    assert after == before == set(), "a refused deploy changed the cluster"
    assert sorted(results) == sorted(list(table) + ["good"])
    for name in table:
        if name != "no-kubernetes-library":
            assert_named(table, results, name)


def test_no_kubernetes_library_where_the_modules_run(refused):
    """The interpreter the kubernetes.core modules run with has no kubernetes library: it is named."""
    table, results, _before, _after = refused
    assert_named(table, results, "no-kubernetes-library")


def test_good_settings_pass_the_same_check_and_change_nothing(refused):
    passed = refused[1]["good"]
    assert not passed.get("failed") and passed["changed"] is False, passed
    assert passed["server_version"] == "v1.36.1" and passed["helm_version"] == "3.17.2", passed
