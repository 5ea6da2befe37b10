"""The openai_traffic module and the traffic role against a real WireMock with the rendered mappings,
and against failures: connection refused, timeouts, 5xx. Beyond chat: MCP sessions against the mock's
real MCP server, the retry demo's model through a client that retries once (what the gateway's retry
policy does; no gateway runs here), and a marked prompt WireMock answers 200 (no guard without a
gateway), which must count as a failure.

playbooks/traffic.yml runs three times, for what only a play shows: the role's settings reach the
module and that many requests reach the backend, the summary comes also when the module fails, check
mode sends nothing (and shows what the role's defaults would send). The rest runs the module's code
in-process.
"""

from __future__ import annotations

import json

import pytest
import yaml

from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpClient
from ansible_collections.agentgateway.observability.plugins.module_utils import traffic
from support.fixtures import REPO, run_playbook
from support.services import free_port

DEFAULTS = yaml.safe_load((REPO / "roles" / "mock_backend" / "defaults" / "main.yml").read_text())
TRAFFIC = yaml.safe_load((REPO / "roles" / "traffic" / "defaults" / "main.yml").read_text())
API_KEY = DEFAULTS["mock_backend_api_key"]
MODELS = DEFAULTS["mock_backend_models"]
# WireMock is no gateway: no prompt guard, no /flaky route, no retries
CHAT_ONLY = {"traffic_guard_enabled": False, "traffic_retry_enabled": False, "traffic_mcp_enabled": False,
             "traffic_rounds": 1}

pytestmark = pytest.mark.services


def params(**overrides):
    base = dict(base_url=None, path="/v1/chat/completions", api_key=API_KEY, models=list(MODELS), requests=10,
                duration=None, concurrency=1, stream_ratio=0.0, prompt="Test message {i}", max_tokens=50,
                headers={}, header_mix=[], extra_body={}, timeout=10.0, retries=0, pause=0.0,
                max_error_ratio=0.0, validate_certs=True, ca_path=None, mcp_path="/mcp", mcp_sessions=0,
                mcp_tool_calls=None, guard_requests=0, guard_prompt="", guard_status=403, guard_fail_open_requests=0,
                guard_fail_open_prompt="", retry_requests=0, retry_path="/flaky", retry_model="mock-flaky")
    base.update(overrides)
    return base


def run(base_url, **overrides):
    p = params(base_url=base_url, **overrides)
    client = HttpClient(base_url=base_url, timeout=p["timeout"], retries=p["retries"],
                        headers={"Authorization": "Bearer " + API_KEY})
    results, wall = traffic.run_traffic(client, p)
    return traffic.summarize(results, wall, base_url + p["path"], p["concurrency"])


def _json_result(output, task_marker="openai_traffic"):
    """The JSON result of the traffic task from ansible-playbook output (json result format)."""
    start = output.index("=> {", output.index(task_marker))
    decoder = json.JSONDecoder()
    result, _end = decoder.raw_decode(output[start + 3:])
    return result


def test_role_request_count_matches_the_wiremock_journal(mock_wiremock):
    """The chat requests, then one MCP session (the mock's own MCP server), in two rounds: 2 x (23 + 6) requests
    in the journal."""
    mock_wiremock.reset_journal()
    proc = run_playbook(REPO / "playbooks" / "traffic.yml", dict(CHAT_ONLY, **{
        "traffic_base_url": mock_wiremock.url, "traffic_path": "/v1/chat/completions", "traffic_api_key": API_KEY,
        "traffic_requests": 23, "traffic_concurrency": 4, "traffic_stream_ratio": 0.5, "traffic_mcp_enabled": True,
        "traffic_rounds": 2, "traffic_round_pause": 1}), args=["-v"])
    result = _json_result(proc.stdout, "Send chat completion requests")
    assert result["requests"] == 23 and result["succeeded"] == 23
    mcp = result["scenarios"]["mcp"]
    assert mcp["failures"] == 0 and mcp["expected"] == 5, mcp
    assert mcp["by_method"] == {"initialize": 1, "notifications/initialized": 1, "tools/list": 1,
                                "tools/call echo": 1, "tools/call fail": 1}
    assert result["scenarios"]["guard"] is None and result["scenarios"]["retry"] is None
    assert result["scenarios"]["fail_open"] is None, "the fail-open prompts go with the guard"
    assert mock_wiremock.request_count() == 2 * (23 + 6), "initialize, initialized, tools/list, 2 tools/call, DELETE"
    assert "round 1 of 2" in proc.stdout and "round 2 of 2" in proc.stdout
    assert "mcp 1 session(s)" in proc.stdout
    assert result["status_counts"] == {"200": 23}
    assert result["streamed"] == 11 or result["streamed"] == 12
    assert result["ttft_ms"]["count"] == result["streamed"]
    assert result["tokens"]["total"] == result["tokens"]["prompt"] + result["tokens"]["completion"] > 0
    assert "Summary" in proc.stdout and "23 requests to" in proc.stdout


def test_role_fails_above_the_error_ratio(mock_wiremock):
    proc = run_playbook(REPO / "playbooks" / "traffic.yml", dict(CHAT_ONLY, **{
        "traffic_base_url": mock_wiremock.url, "traffic_path": "/v1/chat/completions", "traffic_api_key": API_KEY,
        "traffic_models": [MODELS[0], "mock-error-503"], "traffic_requests": 4, "traffic_max_error_ratio": 0.25}),
        check=False)
    assert proc.returncode != 0
    assert "2 of 4 requests" in proc.stdout and "max_error_ratio 0.25" in proc.stdout
    assert "ok 2, failed 2" in proc.stdout, "the summary is printed even when the module fails"


def test_check_mode_sends_nothing_and_the_defaults_would_send_the_tutorial_ten(mock_wiremock):
    mock_wiremock.reset_journal()
    proc = run_playbook(REPO / "playbooks" / "traffic.yml", {
        "traffic_base_url": mock_wiremock.url, "traffic_api_key": "s3cr3t-key"}, args=["--check", "-v"])
    assert mock_wiremock.request_count() == 0
    would_send = _json_result(proc.stdout, "Send chat completion requests")["would_send"]
    assert would_send["requests"] == 10 and would_send["url"] == mock_wiremock.url + "/openai"
    assert [r["model"] for r in would_send["first_requests"]] == ["gpt-4", "gpt-3.5-turbo"] * 2 + ["gpt-4"]
    assert "s3cr3t-key" not in proc.stdout
    # and, by default, one MCP session, one prompt for the guard and two requests to the retried route
    scenarios = would_send["scenarios"]
    assert scenarios["mcp"]["sessions"] == 1 and scenarios["mcp"]["path"] == "/mcp"
    assert scenarios["guard"]["requests"] == 1 and scenarios["guard"]["path"] == "/openai"
    assert scenarios["guard"]["body"]["messages"][0]["content"] == TRAFFIC["traffic_guard_prompt"]
    assert scenarios["retry"] == dict(scenarios["retry"], path="/flaky", requests=2)
    assert scenarios["retry"]["body"]["model"] == "mock-flaky"
    # and one prompt the guard's webhook fails on, which must be answered 200
    assert scenarios["fail_open"] == dict(scenarios["fail_open"], path="/openai", requests=1, expect_status=200)
    assert "mock-guardrail-unavailable" in scenarios["fail_open"]["body"]["messages"][0]["content"]


def test_mixed_statuses_are_counted(mock_wiremock):
    mock_wiremock.reset_journal()
    stats = run(mock_wiremock.url, requests=12, concurrency=3,
                models=[MODELS[0], "mock-error-429", "mock-error-500", "mock-error-503"])
    assert stats["status_counts"] == {"200": 3, "429": 3, "500": 3, "503": 3}
    assert stats["errors"] == {"http_4xx": 3, "http_5xx": 6}
    assert stats["failures"] == 9 and stats["succeeded"] == 3 and stats["error_ratio"] == 0.75
    assert stats["by_model"]["mock-error-500"] == {"requests": 3, "failures": 3}
    assert mock_wiremock.request_count() == 12


def test_header_mix_reaches_the_backend(mock_wiremock):
    mock_wiremock.reset_journal()
    run(mock_wiremock.url, requests=4, header_mix=[{"x-team": "search"}, {"x-team": "ads"}])
    journal = mock_wiremock.admin("GET", "/requests")["requests"]
    teams = sorted(entry["request"]["headers"]["x-team"] for entry in journal)
    assert teams == ["ads", "ads", "search", "search"]


def test_connection_refused_is_counted():
    port = free_port()
    stats = run("http://127.0.0.1:%d" % port, requests=7, concurrency=3)
    assert stats["requests"] == 7 and stats["failures"] == 7
    assert stats["errors"] == {"connection_refused": 7}
    assert stats["status_counts"] == {}
    assert stats["latency_ms"]["p50"] is None


def test_timeouts_are_counted(mock_wiremock):
    # The mock answers after 100 ms; a 30 ms timeout must expire for every request, streamed or not.
    stats = run(mock_wiremock.url, requests=6, concurrency=2, timeout=0.03, stream_ratio=0.5)
    assert stats["errors"] == {"timeout": 6}
    assert stats["failures"] == 6


class SteppedClock(object):
    """A stand-in for the time module of module_utils/traffic.py: its clock moves on one step per request sent."""

    def __init__(self, step):
        self.now, self.step = 1000.0, step

    def monotonic(self):
        return self.now

    def sleep(self, seconds):
        self.now += seconds

    def sender(self, *args):
        result = traffic.send_one(*args)
        self.now += self.step
        return result


def test_duration_mode_sends_until_the_duration_is_over(mock_wiremock, monkeypatch):
    """No request count: requests go out until the clock passes the duration (here each request takes 0.1 s)."""
    clock = SteppedClock(0.1)
    monkeypatch.setattr(traffic, "time", clock)
    p = params(base_url=mock_wiremock.url, requests=None, duration=0.65, concurrency=1,
               headers={"x-test": "duration-mode"})
    client = HttpClient(base_url=mock_wiremock.url, timeout=10.0, headers={"Authorization": "Bearer " + API_KEY})
    results, wall = traffic.run_traffic(client, p, sender=clock.sender)
    stats = traffic.summarize(results, wall, mock_wiremock.url + p["path"], 1)
    assert stats["requests"] == 7 and stats["failures"] == 0, stats["summary"]
    assert stats["duration_seconds"] == 0.7
    journal = mock_wiremock.admin("GET", "/requests")["requests"]
    assert len([r for r in journal if r["request"]["headers"].get("x-test") == "duration-mode"]) == 7


# ---- beyond chat ----------------------------------------------------------------------------------------

def test_the_guard_prompt_matches_the_mock_backends_guard():
    """The traffic's marked prompt is one the mock backend's default guard rejects (Rust and Python agree here)."""
    import re
    assert any(re.search(p, TRAFFIC["traffic_guard_prompt"]) for p in DEFAULTS["mock_backend_prompt_guard_patterns"])
    assert not any(re.search(p, TRAFFIC["traffic_prompt"]) for p in DEFAULTS["mock_backend_prompt_guard_patterns"])


def test_retried_requests_end_with_200_when_the_client_retries_once(mock_wiremock):
    """The retry demo's model fails once, then answers: a client retrying a 503 once always gets 200 (the gateway's
    retry policy does the same; here the module's own retries stand in for it, straight to WireMock)."""
    mock_wiremock.admin("POST", "/scenarios/reset")
    p = params(base_url=mock_wiremock.url, requests=0, retries=1, retry_requests=3,
               retry_path="/v1/chat/completions")
    client = HttpClient(base_url=mock_wiremock.url, timeout=10.0, retries=1, backoff=0.01,
                        headers={"Authorization": "Bearer " + API_KEY})
    retry = traffic.run_scenarios(client, p)["retry"]
    assert retry["succeeded"] == 3 and retry["failures"] == 0 and retry["statuses"] == {"200": 3}
    journal = [e["request"] for e in mock_wiremock.admin("GET", "/requests")["requests"]
               if "mock-flaky" in (e["request"]["body"] or "")]
    assert len(journal) == 6, "each request failed once and was sent again"
    # without a retry the alternation shows: every other request fails
    mock_wiremock.admin("POST", "/scenarios/reset")
    plain = traffic.run_retry(HttpClient(base_url=mock_wiremock.url, timeout=10.0,
                                         headers={"Authorization": "Bearer " + API_KEY}), p)
    assert plain["statuses"] == {"503": 2, "200": 1} and plain["failures"] == 2
    mock_wiremock.admin("POST", "/scenarios/reset")


def test_a_marked_prompt_answered_200_is_a_failure(mock_wiremock):
    """WireMock has no prompt guard: the module must count the marked prompt's 200 as a failure, not as rejected."""
    p = params(base_url=mock_wiremock.url, path="/v1/chat/completions", guard_requests=2,
               guard_prompt=TRAFFIC["traffic_guard_prompt"])
    client = HttpClient(base_url=mock_wiremock.url, timeout=10.0, headers={"Authorization": "Bearer " + API_KEY})
    guard = traffic.run_scenarios(client, p)["guard"]
    assert guard["rejected"] == 0 and guard["failures"] == 2 and guard["statuses"] == {"200": 2}
    assert "let a marked prompt through: HTTP 200" in guard["error_samples"][0]


def test_mcp_sessions_against_the_real_mock_mcp_server(mock_wiremock):
    p = params(base_url=mock_wiremock.url, requests=0, mcp_sessions=2, mcp_tool_calls=[
        {"name": "add", "arguments": {"a": 1, "b": 2}}, {"name": "fail", "expect_error": True},
        {"name": "echo", "arguments": {"text": "x"}, "expect_error": True}])
    client = HttpClient(base_url=mock_wiremock.url, timeout=10.0)
    mcp = traffic.run_scenarios(client, p)["mcp"]
    assert mcp["sessions"] == 2 and mcp["requests"] == 12 and mcp["server"] == "agentgateway-observability-mock-mcp"
    assert mcp["failures"] == 2, "echo answered although an error was expected, in both sessions"
    assert mcp["tools"] == {"add": {"ok": 2, "error": 0}, "fail": {"ok": 0, "error": 2}, "echo": {"ok": 2, "error": 0}}
    assert "tools/call echo succeeded but was expected to fail" in mcp["error_samples"]


def test_the_fail_open_prompt_makes_the_real_webhook_fail_and_the_backend_answer(mock_wiremock):
    """The module's fail-open prompt, as the gateway would hand it to the guard's webhook (POST /request,
    GuardrailsPromptRequest), gets the real mock webhook's 503; sent on to the backend (what the gateway does
    when it fails open; no gateway runs here) it is answered 200, which the module counts as passed."""
    body = traffic.fail_open_body(params(guard_fail_open_requests=1))
    webhook = HttpClient(base_url=mock_wiremock.url, timeout=10.0)
    answer = webhook.request("POST", "/request", json_body={"body": {"messages": body["messages"]}})
    assert answer.status == 503 and not answer.text().lstrip().startswith("{")
    plain = webhook.request("POST", "/request", json_body={"body": {"messages": [{"role": "user", "content": "hi"}]}})
    assert plain.status == 200 and plain.json() == {"action": {"reason": "passed by the mock guardrail webhook"}}
    client = HttpClient(base_url=mock_wiremock.url, timeout=10.0, headers={"Authorization": "Bearer " + API_KEY})
    fail_open = traffic.run_scenarios(client, params(base_url=mock_wiremock.url, guard_fail_open_requests=2))["fail_open"]
    assert fail_open["passed"] == 2 and fail_open["failures"] == 0 and fail_open["statuses"] == {"200": 2}
