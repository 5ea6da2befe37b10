"""The prometheus role's rendered rules, checked by promtool: syntax, and unit tests per alert.

The rules are the shared default render's (site.yml, once per session); a threshold changed is
planned in-process (support.planner). Bad thresholds are refused before any write: unit-tested in
tests/unit/plugins/plugin_utils/test_settings.py.
"""

from __future__ import annotations

import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

from support import planner

HERE = pathlib.Path(__file__).resolve().parent
# GenAI rules, runtime (memory, xDS, MCP, guardrail, retry, upstream) rules and token accounting (cached
# prompt tokens counted once, by provider), one promtool file each
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
    assert [path.name for path in RULES_TESTS] == ["genai_rules_test.yml", "runtime_rules_test.yml",
                                                   "tokens_rules_test.yml"]
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


# Guard for the guard, for every alert: a typo in the metric names of its expression (every selector,
# and every recording rule it reads, then matches nothing) must fail its firing case, and a threshold at
# zero must fail its quiet case.
# One promtool run breaks every alert at once: an alert test (alert_rule_test) looks at the alerts of
# its own alertname only, no alert expression reads another alert, and the recording rules stay as
# rendered; so each alert's cases fail because of its own break, and promtool reports every failed
# case with its alertname. The loose-threshold run leaves three alerts as rendered: that they are not
# among the failures shows that only failed cases are counted.
_SELECTOR = re.compile(r"\b((?:agentgateway_[a-z_]+|kube_[a-z_]+|up)(?=\{)|agentgateway:[a-z0-9_]+:[a-z0-9_]+)")
_THRESHOLD = re.compile(r" > [0-9.e+]+$")
_FAILED_ALERT = re.compile(r"^\s*alertname: (\w+), time: ", re.MULTILINE)


def failing_alerts(values, promtool, directory, alerts, pattern, replacement, count):
    """Rewrite the expression of each of ``alerts`` (``count`` matches of ``pattern`` each, or any
    number when None), run the promtool tests, return the alertnames of the failed cases."""
    values = yaml.safe_load(yaml.safe_dump(values))
    rules = _alerts(values)
    for alert in alerts:
        changed, matches = pattern.subn(replacement, rules[alert]["expr"])
        assert matches if count is None else matches == count, (alert, rules[alert]["expr"])
        rules[alert]["expr"] = changed
    proc = run_unit_tests(values, promtool, directory)
    assert proc.returncode != 0, "the broken alerts passed the promtool tests"
    return set(_FAILED_ALERT.findall(proc.stdout + proc.stderr))


def test_a_broken_alert_expression_fails_the_unit_tests(prometheus_values, promtool, tmp_path):
    failed = failing_alerts(prometheus_values, promtool, tmp_path, sorted(ALERTS), _SELECTOR, r"\1_typo", None)
    assert failed == ALERTS, "alerts whose broken expression passed the promtool tests: %s" % sorted(ALERTS - failed)


# Alerts whose expression does not end in "> threshold": target down (up == 0), xDS (a set expression)
# and the guardrail spike (its floor is followed by the comparison with the usual share).
NO_TRAILING_THRESHOLD = {"AgentgatewayScrapeTargetDown", "AgentgatewayXdsSilent", "AgentgatewayGuardrailBlockSpike"}


def test_an_alert_that_always_fires_fails_the_unit_tests(prometheus_values, promtool, tmp_path):
    loose = ALERTS - NO_TRAILING_THRESHOLD
    failed = failing_alerts(prometheus_values, promtool, tmp_path, sorted(loose), _THRESHOLD, " >= 0", 1)
    assert failed == loose, "alerts without threshold that passed the promtool tests: %s" % sorted(loose - failed)


@pytest.mark.parametrize(
    "settings, expected",
    [
        ({"prometheus_alert_error_ratio": 0.2}, ") > 0.2"),
        ({"prometheus_alert_cost_usd_per_hour": 250}, "* 3600 > 250"),
        ({"prometheus_gateway_job_name": "gw-pods"}, 'job="gw-pods"'),
        ({"prometheus_alert_retry_ratio": 1.5}, "[5m]))\n) > 1.5"),
        ({"prometheus_alert_xds_silence": "30m"}, "agentgateway_xds_message_total{job=\"agentgateway\"}[30m]"),
        ({"prometheus_alert_guardrail_block_spike_factor": 4}, ") <= 4 * ("),
    ],
    ids=["error-ratio", "cost", "job-name", "retry-ratio", "xds-silence", "spike-factor"],
)
def test_thresholds_and_job_reach_the_rules(prometheus_values, tmp_path, promtool, settings, expected):
    """The role's settings planned in-process (support.planner: the role's own templates, byte for
    byte what site.yml renders); the rules that come out still pass promtool's check."""
    values = planner.objects(settings, roles=["prometheus"])["helm/monitoring/prometheus.yaml"]["values"]
    exprs = "\n".join(rule["expr"] for rule in _alerts(values).values())
    defaults = "\n".join(rule["expr"] for rule in _alerts(prometheus_values).values())
    assert exprs.count(expected) > defaults.count(expected), "the setting does not show in the rules"
    paths = write_rule_files(values, tmp_path)
    proc = promtool_run(promtool, "check", "rules", *[str(p) for p in paths])
    assert proc.returncode == 0, proc.stdout + proc.stderr
