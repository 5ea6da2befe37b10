"""Unit tests of the openai_traffic module: planning, statistics, input errors, check mode."""

from __future__ import annotations

import json
import threading
import time

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.agentgateway.observability.plugins.module_utils import traffic
from ansible_collections.agentgateway.observability.plugins.modules import openai_traffic as mod


def params(**overrides):
    base = dict(base_url="http://127.0.0.1:1", path="/v1/chat/completions", api_key="", models=["gpt-4"],
                requests=10, duration=None, concurrency=1, stream_ratio=0.0, prompt="Test message {i}",
                max_tokens=50, headers={}, header_mix=[], extra_body={}, timeout=5.0, retries=0, pause=0.0,
                max_error_ratio=0.0, validate_certs=True, ca_path=None)
    base.update(overrides)
    return base


class _Client(object):
    def close(self):
        pass


def test_model_cycle_is_a_smooth_weighted_round_robin():
    order = traffic.model_cycle(["a", {"name": "b", "weight": 3}])
    assert sorted(order) == ["a", "b", "b", "b"] and order[0] == "b" and order != ["b", "b", "b", "a"][::-1]
    assert traffic.model_cycle([{"name": "x", "weight": 2}, {"name": "y", "weight": 2}]) == ["x", "y", "x", "y"]


@pytest.mark.parametrize("models,needle", [
    ([], "at least one"), ([{"weight": 1}], "models[0]"), ([{"name": "a", "weight": 0}], "weight"),
    ([{"name": "a", "weight": True}], "weight"), ([{"name": "a", "w": 1}], "unknown keys w")])
def test_model_cycle_errors(models, needle):
    with pytest.raises(traffic.TrafficError, match=None) as info:
        traffic.model_cycle(models)
    assert needle in str(info.value)


@pytest.mark.parametrize("ratio,expected", [(0.0, 0), (1.0, 10), (0.5, 5), (0.3, 3), (0.33, 3)])
def test_stream_ratio_is_exact(ratio, expected):
    assert sum(traffic.is_streamed(i, ratio) for i in range(10)) == expected


def test_request_spec_body_and_headers():
    p = params(stream_ratio=1.0, headers={"x-env": "test"}, header_mix=[{"x-team": "a"}, {"x-team": "b"}],
               extra_body={"temperature": 0.2}, max_tokens=0)
    spec = traffic.request_spec(1, p, ["m1", "m2"])
    assert spec["model"] == "m2" and spec["stream"] is True
    assert spec["body"] == {"model": "m2", "messages": [{"role": "user", "content": "Test message 2"}],
                            "stream": True, "stream_options": {"include_usage": True}, "temperature": 0.2}
    assert spec["headers"] == {"Accept": "text/event-stream", "x-env": "test", "x-team": "b"}


def _fake(result_for):
    def sender(_client, _path, spec, _timeout):
        return result_for(spec)
    return sender


def _ok(spec, latency=0.1, usage=(10, 5)):
    return {"model": spec["model"], "stream": spec["stream"], "status": 200, "kind": None, "error": None,
            "latency": latency, "ttft": latency / 2 if spec["stream"] else None,
            "usage": {"prompt": usage[0], "completion": usage[1], "total": sum(usage)}, "attempts": 1}


def test_run_traffic_count_and_concurrency():
    active, peak, lock = [0], [0], threading.Lock()

    def result_for(spec):
        with lock:
            active[0] += 1
            peak[0] = max(peak[0], active[0])
        time.sleep(0.02)
        with lock:
            active[0] -= 1
        return _ok(spec)

    results, wall = traffic.run_traffic(_Client(), params(requests=20, concurrency=5), sender=_fake(result_for))
    assert len(results) == 20 and peak[0] == 5 and wall < 0.5
    results, _wall = traffic.run_traffic(_Client(), params(requests=0), sender=_fake(result_for))
    assert results == []


def test_run_traffic_duration_and_pause():
    results, wall = traffic.run_traffic(_Client(), params(requests=None, duration=0.3, pause=0.1),
                                        sender=_fake(_ok))
    assert 2 <= len(results) <= 4 and wall < 0.6


def test_summarize_counts_and_percentiles():
    results = [_ok({"model": "a", "stream": i % 2 == 0}, latency=(i + 1) / 100.0) for i in range(100)]
    results.append({"model": "b", "stream": False, "status": 503, "kind": "http_5xx", "error": "HTTP 503 x",
                    "latency": None, "ttft": None, "usage": None, "attempts": 1})
    results.append({"model": "b", "stream": False, "status": None, "kind": "timeout", "error": "timeout: y",
                    "latency": None, "ttft": None, "usage": None, "attempts": 2})
    stats = traffic.summarize(results, 2.0, "http://x/v1", 4)
    assert stats["requests"] == 102 and stats["failures"] == 2 and stats["succeeded"] == 100
    assert stats["http_attempts"] == 103
    assert stats["status_counts"] == {"200": 100, "503": 1}
    assert stats["errors"] == {"http_5xx": 1, "timeout": 1}
    assert stats["error_ratio"] == round(2 / 102, 4)
    assert stats["latency_ms"]["p50"] == 500.0 and stats["latency_ms"]["p95"] == 950.0
    assert stats["latency_ms"]["p99"] == 990.0 and stats["latency_ms"]["max"] == 1000.0
    assert stats["ttft_ms"]["count"] == 50
    assert stats["tokens"] == {"prompt": 1000, "completion": 500, "total": 1500}
    assert stats["requests_per_second"] == 51.0
    assert stats["by_model"] == {"a": {"requests": 100, "failures": 0}, "b": {"requests": 2, "failures": 2}}
    assert stats["error_samples"] == ["HTTP 503 x", "timeout: y"]
    assert any("p95 950.0" in line for line in stats["summary"])


@pytest.mark.parametrize("overrides,needle", [
    ({"concurrency": 0}, "concurrency"), ({"stream_ratio": 1.5}, "stream_ratio"),
    ({"max_error_ratio": -0.1}, "max_error_ratio"), ({"timeout": 0}, "timeout"),
    ({"base_url": "localhost:8080"}, "base_url"), ({"path": "v1"}, "path"),
    ({"duration": 0.0, "requests": None}, "duration"), ({"requests": -1}, "requests"),
    ({"header_mix": ["x"]}, "header_mix[0]"), ({"models": []}, "models")])
def test_validate_errors(overrides, needle):
    with pytest.raises(traffic.TrafficError) as info:
        traffic.validate(params(**overrides))
    assert needle in str(info.value)


def _run_main(args, capsys):
    with patch_module_args(args):
        with pytest.raises(SystemExit):
            mod.main()
    return json.loads(capsys.readouterr().out)


def test_check_mode_reports_and_masks(capsys):
    out = _run_main({"base_url": "http://127.0.0.1:9", "api_key": "s3cr3t", "requests": 3, "stream_ratio": 1,
                     "header_mix": [{"x-api-key": "other-secret", "x-team": "t"}], "_ansible_check_mode": True},
                    capsys)
    assert out["changed"] is False
    sent = out["would_send"]
    assert sent["requests"] == 3 and len(sent["first_requests"]) == 3
    assert sent["first_requests"][0]["headers"]["Authorization"] == "********"
    assert sent["first_requests"][0]["headers"]["x-api-key"] == "********"
    assert "s3cr3t" not in json.dumps(out), "api_key is no_log everywhere, invocation included"
    assert "other-secret" not in json.dumps(sent)


def test_main_fails_on_connection_refused_with_stats(capsys):
    from support.services import free_port
    out = _run_main({"base_url": "http://127.0.0.1:%d" % free_port(), "requests": 3, "timeout": 2}, capsys)
    assert out["failed"] is True and "3 of 3 requests" in out["msg"]
    assert out["errors"] == {"connection_refused": 3}


def test_main_refuses_bad_input(capsys):
    out = _run_main({"base_url": "http://x", "requests": 1, "stream_ratio": 2}, capsys)
    assert out["failed"] is True and "stream_ratio" in out["msg"]
    out = _run_main({"base_url": "http://x", "requests": 1, "duration": 1}, capsys)
    assert out["failed"] is True and "mutually exclusive" in out["msg"]
