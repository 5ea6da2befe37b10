"""The prometheus role's rendered rules, checked by promtool: syntax, and unit tests per alert."""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from support.fixtures import assert_rejected_before_writing, load_rendered, render_site

HERE = pathlib.Path(__file__).resolve().parent
# GenAI rules and runtime (memory, xDS, MCP, guardrail, retry, upstream) rules, one promtool file each
RULES_TESTS = sorted((HERE / "promtool").glob("*_test.yml"))
ALERTS = {
    "AgentgatewayHighErrorRatio",
    "AgentgatewayHighRequestLatency",
    "AgentgatewaySlowTimeToFirstToken",
    "AgentgatewayScrapeTargetDown",
    "AgentgatewayTokenBurnRateHigh",
    "AgentgatewayCostBurnRateHigh",
    "AgentgatewayBackendErrorRatioHigh",
    "AgentgatewayMemoryNearLimit",
    "AgentgatewayXdsSilent",
    "AgentgatewayMcpErrorRatioHigh",
    "AgentgatewayGuardrailBlockSpike",
    "AgentgatewayRetryStorm",
    "AgentgatewayUpstreamConnectSlow",
}
RECORDS = {
    "agentgateway:requests:rate5m",
    "agentgateway:request_errors:ratio_rate5m",
    "agentgateway:gen_ai_tokens:rate5m",
    "agentgateway:gen_ai_cost_usd:per_hour",
    "agentgateway:pod_gateway:info",
    "agentgateway:mcp_requests:rate5m",
    "agentgateway:mcp_request_errors:ratio_rate5m",
    "agentgateway:guardrail_checks:rate5m",
    "agentgateway:retries:rate5m",
}


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
    assert "SUCCESS: %d rules found" % len(ALERTS) in proc.stdout
    assert "SUCCESS: %d rules found" % len(RECORDS) in proc.stdout


def run_unit_tests(values, promtool, directory):
    write_rule_files(values, directory)
    for path in RULES_TESTS:
        shutil.copy(path, pathlib.Path(directory) / path.name)
    return promtool_run(promtool, "test", "rules", *[path.name for path in RULES_TESTS], cwd=directory)


def test_rendered_rules_pass_promtool_unit_tests(prometheus_values, promtool, tmp_path):
    assert [path.name for path in RULES_TESTS] == ["genai_rules_test.yml", "runtime_rules_test.yml"]
    proc = run_unit_tests(prometheus_values, promtool, tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def _alerts(values):
    return {rule["alert"]: rule for group in values["serverFiles"]["alerting_rules.yml"]["groups"]
            for rule in group["rules"]}


def test_every_alert_has_a_firing_and_a_quiet_case(prometheus_values):
    records = {rule["record"] for group in prometheus_values["serverFiles"]["recording_rules.yml"]["groups"]
               for rule in group["rules"]}
    assert set(_alerts(prometheus_values)) == ALERTS
    assert records == RECORDS
    firing, quiet = set(), set()
    for path in RULES_TESTS:
        for case in yaml.safe_load(path.read_text(encoding="utf-8"))["tests"]:
            for check in case.get("alert_rule_test", []):
                (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    assert ALERTS - firing == set(), "alerts without a firing test case"
    assert ALERTS - quiet == set(), "alerts without a quiet test case"


# Guard for the guard, for every alert: a typo in the metric names of its expression (every selector
# then matches nothing) must fail its firing case, and a threshold at zero must fail its quiet case.
_SELECTOR = re.compile(r"\b(agentgateway_[a-z_]+|kube_[a-z_]+|up)\{")
_THRESHOLD = re.compile(r" > [0-9.e+]+$")


@pytest.mark.parametrize("alert", sorted(ALERTS))
def test_a_broken_alert_expression_fails_the_unit_tests(prometheus_values, promtool, tmp_path, alert):
    values = yaml.safe_load(yaml.safe_dump(prometheus_values))
    rule = _alerts(values)[alert]
    broken, count = _SELECTOR.subn(r"\1_typo{", rule["expr"])
    assert count, rule["expr"]
    rule["expr"] = broken
    proc = run_unit_tests(values, promtool, tmp_path)
    assert proc.returncode != 0, "%s: a broken expression passed the promtool tests" % alert
    assert "alertname: %s" % alert in proc.stdout + proc.stderr, proc.stdout + proc.stderr


# Alerts whose expression does not end in "> threshold": target down (up == 0), xDS (a set expression)
# and the guardrail spike (its floor is followed by the comparison with the usual share).
NO_TRAILING_THRESHOLD = {"AgentgatewayScrapeTargetDown", "AgentgatewayXdsSilent", "AgentgatewayGuardrailBlockSpike"}


@pytest.mark.parametrize("alert", sorted(ALERTS - NO_TRAILING_THRESHOLD))
def test_an_alert_that_always_fires_fails_the_unit_tests(prometheus_values, promtool, tmp_path, alert):
    values = yaml.safe_load(yaml.safe_dump(prometheus_values))
    rule = _alerts(values)[alert]
    loose, count = _THRESHOLD.subn(" >= 0", rule["expr"])
    assert count == 1, rule["expr"]
    rule["expr"] = loose
    proc = run_unit_tests(values, promtool, tmp_path)
    assert proc.returncode != 0, "%s: an alert without threshold passed the promtool tests" % alert
    assert "alertname: %s" % alert in proc.stdout + proc.stderr, proc.stdout + proc.stderr


@pytest.mark.parametrize(
    "extra_vars, expected",
    [
        ({"prometheus_alert_error_ratio": 0.2}, ") > 0.2"),
        ({"prometheus_alert_cost_usd_per_hour": 250}, "* 3600 > 250"),
        ({"prometheus_gateway_job_name": "gw-pods"}, 'job="gw-pods"'),
        ({"prometheus_alert_retry_ratio": 1.5}, "[5m]))\n) > 1.5"),
        ({"prometheus_alert_xds_silence": "30m"}, "agentgateway_xds_message_total{job=\"agentgateway\"}[30m]"),
        ({"prometheus_alert_guardrail_block_spike_factor": 4}, ") <= 4 * ("),
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


@pytest.mark.parametrize(
    "extra_vars, names",
    [
        ({"prometheus_alert_memory_limit_ratio": 90}, ["prometheus_alert_memory_limit_ratio", "(0, 1]"]),
        ({"prometheus_alert_guardrail_block_spike_factor": 0.5},
         ["prometheus_alert_guardrail_block_spike_factor", "at least 1"]),
        ({"prometheus_alert_xds_silence": "15 minutes"}, ["prometheus_alert_xds_silence", "Prometheus duration"]),
    ],
    ids=["memory-ratio", "spike-factor", "xds-silence"],
)
def test_bad_runtime_thresholds_fail_before_anything_is_written(tmp_path, extra_vars, names):
    out = tmp_path / "r"
    assert_rejected_before_writing(render_site(out, extra_vars, check=False), out, *names)
