"""The deploy action with validate_only: every check of both outlets, nothing written, nothing applied."""

from __future__ import annotations

from unittest import mock

import pytest
import yaml
from ansible.errors import AnsibleActionFail

from support import samples
from unit.plugins.action.test_deploy import ROUTE, SECRET, make_action, run

RELEASE = samples.release()
SETTINGS = {"prometheus_release_name": "prometheus", "prometheus_namespace": "monitoring",
            "prometheus_chart_version": "29.27.0", "prometheus_chart_name": "prometheus"}


def validate(args, **kwargs):
    """Run with validate_only; fail the test if any module would be executed."""
    action = make_action(dict(args, validate_only=True), **kwargs)
    with mock.patch.object(action, "_execute_module", side_effect=AssertionError("a module was executed")):
        return action.run(task_vars={})


def test_render_mode_writes_nothing_and_returns_the_claims(tmp_path):
    result = validate({"role": "prometheus", "render_dir": str(tmp_path), "releases": [RELEASE], "objects": [ROUTE],
                       "settings": SETTINGS})
    assert list(tmp_path.iterdir()) == []
    assert result["changed"] is False and result["mode"] == "validate"
    assert result["files"] == ["helm/monitoring/prometheus.yaml", "manifests/agentgateway-system/HTTPRoute-openai.yaml"]
    assert result["claims"]["helm/monitoring/prometheus.yaml"] == {
        "role": "prometheus",
        "what": "release prometheus in namespace monitoring",
        "settings": ["prometheus_chart_name", "prometheus_namespace", "prometheus_release_name"],
    }
    assert result["claims"]["manifests/agentgateway-system/HTTPRoute-openai.yaml"]["settings"] == []


def test_apply_mode_executes_no_module():
    result = validate({"role": "grafana", "objects_first": [SECRET], "releases": [RELEASE], "objects": [ROUTE],
                       "kubeconfig": "/nonexistent/kubeconfig", "state": "absent"})
    assert result["mode"] == "validate" and result["changed"] is False


def test_check_mode_is_the_same():
    assert validate({"role": "prometheus", "releases": [RELEASE]}, check_mode=True)["mode"] == "validate"


def test_a_bad_release_names_the_settings_behind_it(tmp_path):
    bad = dict(RELEASE, chart=dict(RELEASE["chart"], version="latest"))
    settings = dict(SETTINGS, prometheus_chart_version="latest")
    with pytest.raises(AnsibleActionFail) as info:
        validate({"role": "prometheus", "render_dir": str(tmp_path), "releases": [bad], "settings": settings})
    message = str(info.value)
    assert "chart.version must be a pinned version" in message
    # every setting whose value the message quotes (the chart is also named prometheus)
    assert message.endswith(" (set by prometheus_chart_name='prometheus', prometheus_chart_version='latest', "
                            "prometheus_release_name='prometheus')")
    assert list(tmp_path.iterdir()) == []


def test_the_same_failure_without_validate_only_names_the_settings_too(tmp_path):
    bad = dict(RELEASE, namespace="Monitoring")
    with pytest.raises(AnsibleActionFail, match=r"\(set by .*prometheus_namespace='Monitoring'"):
        run({"role": "prometheus", "render_dir": str(tmp_path), "releases": [bad],
             "settings": dict(SETTINGS, prometheus_namespace="Monitoring")})


def test_an_entry_another_role_claims_is_refused_naming_both_roles_settings():
    tempo = {"role": "tempo", "releases": [dict(RELEASE, release="tempo")],
             "settings": {"tempo_release_name": "tempo", "tempo_namespace": "monitoring"}}
    loki = {"role": "loki", "releases": [dict(RELEASE, release="tempo")],
            "settings": {"loki_release_name": "tempo", "loki_namespace": "monitoring", "loki_chart_name": "loki"}}
    with pytest.raises(AnsibleActionFail) as info:
        validate({"plans": [tempo, loki]})
    assert str(info.value) == (
        "deploy: role loki would also render or apply release tempo in namespace monitoring "
        "(helm/monitoring/tempo.yaml), which role tempo does: give one of them another name "
        "(loki: loki_namespace, loki_release_name; tempo: tempo_namespace, tempo_release_name)")
    with pytest.raises(AnsibleActionFail, match="role loki would also render or apply release tempo"):
        validate({"plans": [loki], "planned": [tempo]})


def test_a_role_planned_again_replaces_its_earlier_part():
    first = validate({"plans": [{"role": "prometheus", "releases": [RELEASE]}]})
    again = validate({"plans": [{"role": "prometheus", "releases": [RELEASE]}],
                      "planned": [{"role": "prometheus", "releases": [RELEASE]}]})
    assert again["claims"] == first["claims"]


def test_an_earlier_render_of_another_role_is_checked(tmp_path):
    run({"role": "mock_backend", "render_dir": str(tmp_path), "objects": [ROUTE]})
    before = (tmp_path / "index.yaml").read_text()
    with pytest.raises(AnsibleActionFail) as info:
        validate({"role": "gateway_observability", "render_dir": str(tmp_path), "objects": [ROUTE],
                  "settings": {"gateway_observability_route_name": "openai"}})
    assert "HTTPRoute-openai.yaml is already rendered by role mock_backend" in str(info.value)
    assert "(named by gateway_observability_route_name)" in str(info.value)
    assert (tmp_path / "index.yaml").read_text() == before
    entry = yaml.safe_load(before)["entries"][0]
    assert (entry["role"], entry["path"]) == ("mock_backend", "manifests/agentgateway-system/HTTPRoute-openai.yaml")


def test_validate_only_refuses_a_relative_render_dir():
    with pytest.raises(AnsibleActionFail, match="absolute path"):
        validate({"role": "prometheus", "render_dir": "relative", "releases": [RELEASE]})
