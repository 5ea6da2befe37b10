"""What the real kubernetes.core modules make of the arguments the deploy action hands them.

kubernetes.core.helm runs for real here with only its helm process calls faked (the way
kubernetes.core's own unit tests fake run_command): so a wrong option name, a missing --atomic or
a lost value fails here, not on a user's cluster. kubernetes.core.k8s needs an API server to get
past its argument handling, so its arguments are checked against its real argument spec.
"""

from __future__ import annotations

import json
from unittest import mock

import pytest
import yaml
from ansible.module_utils import basic
from ansible.module_utils.common.arg_spec import ArgumentSpecValidator
from ansible.module_utils.testing import patch_module_args

from ansible_collections.agentgateway.observability.plugins.plugin_utils import desired_state as ds
from ansible_collections.kubernetes.core.plugins.modules import helm as helm_module
from ansible_collections.kubernetes.core.plugins.modules import k8s as k8s_module
from support import samples

RELEASE = ds.validate_release(samples.release(values={
    "server": {"retention": "2d", "extraFlags": ["web.enable-remote-write-receiver"]},
    "serverFiles": {"alerting_rules.yml": {"groups": [{"name": "g", "rules": [
        {"alert": "A", "expr": "up == 0", "annotations": {"summary": "{{ $labels.pod }} down"}}]}]}},
}))


class FakeHelm(object):
    """Answers the helm CLI calls kubernetes.core.helm makes; records each with its environment."""

    def __init__(self, deployed=None):
        self.calls = []
        self.values_files = {}
        self.deployed = deployed or []

    def __call__(self, cmd, *args, **kwargs):
        command = cmd if isinstance(cmd, str) else " ".join(cmd)
        self.calls.append((command, dict(kwargs.get("environ_update") or {})))
        for token in command.split():
            if token.startswith("-f=") or token.startswith("--values="):
                path = token.split("=", 1)[1].strip("'\"")
                with open(path, encoding="utf-8") as handle:
                    self.values_files[path] = yaml.safe_load(handle)
        if " version" in command:
            return 0, 'version.BuildInfo{Version:"v3.17.2", GitCommit:"cc0bbbd", GoVersion:"go1.23"}', ""
        if " list " in command:
            return 0, yaml.safe_dump(self.deployed), ""
        if " show chart " in command:
            return 0, "apiVersion: v2\nname: prometheus\nversion: 29.27.0\n", ""
        if " get values " in command:
            return 0, "{}", ""
        return 0, "Release has been upgraded", ""


def run_helm_module(args, fake):
    with patch_module_args(args), \
            mock.patch.object(basic.AnsibleModule, "run_command", side_effect=fake), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", return_value="/usr/bin/helm"), \
            mock.patch.object(basic.AnsibleModule, "exit_json", side_effect=SystemExit("exit")) as exit_json, \
            mock.patch.object(basic.AnsibleModule, "fail_json", side_effect=SystemExit("fail")) as fail_json:
        with pytest.raises(SystemExit):
            helm_module.main()
    assert not fail_json.called, fail_json.call_args
    return exit_json.call_args.kwargs


def test_install_command_carries_version_repo_wait_atomic_and_the_values(tmp_path):
    fake = FakeHelm()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text("apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\nusers: []\n")
    args = ds.helm_module_args(RELEASE, kubeconfig=str(kubeconfig), context="kind-agw", wait_timeout="7m")
    result = run_helm_module(args, fake)
    assert result["changed"] is True
    upgrade = [c for c in fake.calls if " upgrade " in c[0]]
    assert len(upgrade) == 1
    command, env = upgrade[0]
    assert " upgrade -i --reset-values " in command
    for flag in ("--version=29.27.0", "--repo=https://prometheus-community.github.io/helm-charts", "--atomic",
                 "--wait", "--timeout 7m", "prometheus 'prometheus'"):
        assert flag in command, (flag, command)
    assert "--create-namespace" not in command, "the deploy path creates namespaces itself, labelled"
    # namespace, context and kubeconfig reach helm through its environment
    assert env["HELM_NAMESPACE"] == "monitoring"
    assert env["HELM_KUBECONTEXT"] == "kind-agw"
    assert env["KUBECONFIG"]  # a private copy of the kubeconfig file named in the arguments
    # the values helm receives are exactly the rendered ones, Go templates included
    assert list(fake.values_files.values()) == [RELEASE["values"]]


def test_oci_chart_reference_reaches_helm_whole():
    rel = ds.validate_release({"release": "agentgateway-crds", "namespace": "agentgateway-system",
                               "chart": {"oci": "oci://cr.agentgateway.dev/charts", "name": "agentgateway-crds",
                                         "version": "v1.4.1"}, "values": {}})
    fake = FakeHelm()
    run_helm_module(ds.helm_module_args(rel), fake)
    command = [c for c in fake.calls if " upgrade " in c[0]][0][0]
    assert "agentgateway-crds 'oci://cr.agentgateway.dev/charts/agentgateway-crds'" in command
    assert "--version=v1.4.1" in command and "--repo" not in command


def test_uninstall_of_a_deployed_release():
    deployed = [{"name": "prometheus", "namespace": "monitoring", "revision": "1", "status": "deployed",
                 "chart": "prometheus-29.27.0", "app_version": "v3.14.0", "updated": "now"}]
    fake = FakeHelm(deployed=deployed)
    result = run_helm_module(ds.helm_module_args(RELEASE, state="absent"), fake)
    assert result["changed"] is True
    assert any(c[0].startswith("/usr/bin/helm uninstall") and "prometheus" in c[0] and "--wait" in c[0]
               for c in fake.calls), fake.calls


@pytest.mark.parametrize("state", ["present", "absent"])
def test_k8s_arguments_fit_the_real_k8s_argument_spec(state):
    obj = ds.validate_object({"apiVersion": "v1", "kind": "Secret",
                              "metadata": {"name": "admin", "namespace": "monitoring"}})
    args = ds.k8s_module_args(obj, state=state, kubeconfig="/tmp/kubeconfig", context="kind-agw")
    result = ArgumentSpecValidator(k8s_module.argspec()).validate(json.loads(json.dumps(args)))
    assert result.error_messages == []
    assert result.validated_parameters["state"] == state
    if state == "present":
        assert result.validated_parameters["server_side_apply"]["field_manager"] == "agentgateway-observability"
