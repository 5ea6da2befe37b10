"""The prometheus role's rendered rules, checked by promtool: syntax, and unit tests per alert."""

from __future__ import annotations

import pathlib
import shutil
import subprocess

import pytest
import yaml

from support.fixtures import load_rendered, render_site

HERE = pathlib.Path(__file__).resolve().parent
RULES_TEST = HERE / "promtool" / "genai_rules_test.yml"


def write_rule_files(values, directory):
    paths = []
    for name in ("alerting_rules.yml", "recording_rules.yml"):
        path = pathlib.Path(directory) / name
        path.write_text(yaml.safe_dump(values["serverFiles"][name], sort_keys=False), encoding="utf-8")
        paths.append(path)
    return paths


def promtool_run(promtool, *args, cwd=None):
    return subprocess.run([promtool] + list(args), cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


def test_rendered_rules_pass_promtool_check(prometheus_values, promtool, tmp_path):
    paths = write_rule_files(prometheus_values, tmp_path)
    proc = promtool_run(promtool, "check", "rules", *[str(p) for p in paths])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "SUCCESS: 7 rules found" in proc.stdout
    assert "SUCCESS: 4 rules found" in proc.stdout


def test_rendered_rules_pass_promtool_unit_tests(prometheus_values, promtool, tmp_path):
    write_rule_files(prometheus_values, tmp_path)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    proc = promtool_run(promtool, "test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_every_alert_has_a_firing_and_a_quiet_case(prometheus_values):
    alerts = {
        rule["alert"]
        for group in prometheus_values["serverFiles"]["alerting_rules.yml"]["groups"]
        for rule in group["rules"]
    }
    spec = yaml.safe_load(RULES_TEST.read_text(encoding="utf-8"))
    firing, quiet = set(), set()
    for case in spec["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert alerts == {
        "AgentgatewayHighErrorRatio",
        "AgentgatewayHighRequestLatency",
        "AgentgatewaySlowTimeToFirstToken",
        "AgentgatewayScrapeTargetDown",
        "AgentgatewayTokenBurnRateHigh",
        "AgentgatewayCostBurnRateHigh",
        "AgentgatewayBackendErrorRatioHigh",
    }
    assert alerts - firing == set(), "alerts without a firing test case"
    assert alerts - quiet == set(), "alerts without a quiet test case"


def test_a_broken_alert_expression_fails_the_unit_tests(prometheus_values, promtool, tmp_path):
    """Guard for the guard: the promtool tests notice a wrong metric name in an alert."""
    values = yaml.safe_load(yaml.safe_dump(prometheus_values))
    rule = values["serverFiles"]["alerting_rules.yml"]["groups"][0]["rules"][0]
    rule["expr"] = rule["expr"].replace("agentgateway_requests_total", "agentgateway_requests")
    write_rule_files(values, tmp_path)
    shutil.copy(RULES_TEST, tmp_path / RULES_TEST.name)
    proc = promtool_run(promtool, "test", "rules", RULES_TEST.name, cwd=tmp_path)
    assert proc.returncode != 0
    assert "AgentgatewayHighErrorRatio" in proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "extra_vars, expected",
    [
        ({"prometheus_alert_error_ratio": 0.2}, ") > 0.2"),
        ({"prometheus_alert_cost_usd_per_hour": 250}, "* 3600 > 250"),
        ({"prometheus_gateway_job_name": "gw-pods"}, 'job="gw-pods"'),
    ],
)
def test_thresholds_and_job_reach_the_rules(tmp_path, promtool, extra_vars, expected):
    render_site(tmp_path / "r", extra_vars)
    values = load_rendered(tmp_path / "r", "helm/monitoring/prometheus.yaml")["values"]
    exprs = "\n".join(
        rule["expr"] for group in values["serverFiles"]["alerting_rules.yml"]["groups"] for rule in group["rules"]
    )
    assert expected in exprs
    paths = write_rule_files(values, tmp_path)
    proc = promtool_run(promtool, "check", "rules", *[str(p) for p in paths])
    assert proc.returncode == 0, proc.stdout + proc.stderr
