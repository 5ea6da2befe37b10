"""The openai_traffic module and the traffic role against a real WireMock with the rendered mappings,
and against failures: connection refused, timeouts, 5xx.

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
API_KEY = DEFAULTS["mock_backend_api_key"]
MODELS = DEFAULTS["mock_backend_models"]

pytestmark = pytest.mark.services


def params(**overrides):
    base = dict(base_url=None, path="/v1/chat/completions", api_key=API_KEY, models=list(MODELS), requests=10,
                duration=None, concurrency=1, stream_ratio=0.0, prompt="Test message {i}", max_tokens=50,
                headers={}, header_mix=[], extra_body={}, timeout=10.0, retries=0, pause=0.0,
                max_error_ratio=0.0, validate_certs=True, ca_path=None)
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
    mock_wiremock.reset_journal()
    proc = run_playbook(REPO / "playbooks" / "traffic.yml", {
        "traffic_base_url": mock_wiremock.url, "traffic_path": "/v1/chat/completions", "traffic_api_key": API_KEY,
        "traffic_requests": 23, "traffic_concurrency": 4, "traffic_stream_ratio": 0.5}, args=["-v"])
    result = _json_result(proc.stdout, "Send chat completion requests")
    assert result["requests"] == 23 and result["succeeded"] == 23
    assert mock_wiremock.request_count() == 23
    assert result["status_counts"] == {"200": 23}
    assert result["streamed"] == 11 or result["streamed"] == 12
    assert result["ttft_ms"]["count"] == result["streamed"]
    assert result["tokens"]["total"] == result["tokens"]["prompt"] + result["tokens"]["completion"] > 0
    assert "Summary" in proc.stdout and "23 requests to" in proc.stdout


def test_role_fails_above_the_error_ratio(mock_wiremock):
    proc = run_playbook(REPO / "playbooks" / "traffic.yml", {
        "traffic_base_url": mock_wiremock.url, "traffic_path": "/v1/chat/completions", "traffic_api_key": API_KEY,
        "traffic_models": [MODELS[0], "mock-error-503"], "traffic_requests": 4, "traffic_max_error_ratio": 0.25},
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
