# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenAI-style test traffic: request plans, the concurrent send loop and its summary.

The logic behind the openai_traffic module, kept here so the module stays a thin wrapper and the
benchmark and tests drive the same code. Besides chat completions: MCP sessions (mcp_client.py), a
prompt the gateway's prompt guard must reject, prompts its remote guardrail fails open on, and requests
to a route the gateway retries (``run_scenarios``), each bounded and sent one after the other after the
chat traffic.
"""

from __future__ import annotations

import copy
import json
import threading
import time

from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import (
    HttpError,
    percentile,
    status_kind,
)

SECRET_HEADERS = frozenset({"authorization", "x-api-key", "api-key", "proxy-authorization"})
DEFAULT_REQUESTS = 10


class TrafficError(ValueError):
    """Bad module input; the message names the option."""


def model_cycle(models):
    """A list of model names whose order is a smooth weighted round robin over ``models``."""
    entries = []
    for index, entry in enumerate(models or []):
        if isinstance(entry, str):
            entry = {"name": entry}
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str) or not entry["name"]:
            raise TrafficError("models[%d] must be a model name or a mapping with name and weight, got %r" % (index, entry))
        unknown = sorted(set(entry) - {"name", "weight"})
        if unknown:
            raise TrafficError("models[%d]: unknown keys %s (allowed: name, weight)" % (index, ", ".join(unknown)))
        weight = entry.get("weight", 1)
        if isinstance(weight, bool) or not isinstance(weight, int) or weight < 1:
            raise TrafficError("models[%d].weight must be an integer >= 1, got %r" % (index, weight))
        entries.append((entry["name"], weight))
    if not entries:
        raise TrafficError("models must name at least one model")
    total = sum(weight for _name, weight in entries)
    current = [0] * len(entries)
    order = []
    for _step in range(total):
        for position, (_name, weight) in enumerate(entries):
            current[position] += weight
        best = max(range(len(entries)), key=lambda p: (current[p], -p))
        current[best] -= total
        order.append(entries[best][0])
    return order


def is_streamed(index, ratio):
    """Whether request ``index`` (from 0) streams, spreading ``ratio`` evenly over the sequence."""
    return int((index + 1) * ratio + 1e-9) > int(index * ratio + 1e-9)


def request_spec(index, params, models):
    """Body and headers of request number ``index`` (from 0)."""
    stream = is_streamed(index, params["stream_ratio"])
    body = {
        "model": models[index % len(models)],
        "messages": [{"role": "user", "content": params["prompt"].replace("{i}", str(index + 1))}],
    }
    if params["max_tokens"]:
        body["max_tokens"] = params["max_tokens"]
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    body.update(copy.deepcopy(params["extra_body"] or {}))
    headers = {"Accept": "text/event-stream" if stream else "application/json"}
    headers.update({str(k): str(v) for k, v in (params["headers"] or {}).items()})
    if params["header_mix"]:
        chosen = params["header_mix"][index % len(params["header_mix"])]
        headers.update({str(k): str(v) for k, v in chosen.items()})
    return {"index": index, "model": body["model"], "stream": stream, "body": body, "headers": headers}


def _usage(usage):
    if not isinstance(usage, dict):
        return None
    result = {}
    for key, out in (("prompt_tokens", "prompt"), ("completion_tokens", "completion"), ("total_tokens", "total")):
        value = usage.get(key)
        result[out] = value if isinstance(value, int) and not isinstance(value, bool) else 0
    return result


def send_one(client, path, spec, timeout):
    """Send one request; return a result dict (never raises for network or HTTP failures)."""
    result = {"model": spec["model"], "stream": spec["stream"], "status": None, "kind": None, "error": None,
              "latency": None, "ttft": None, "usage": None, "attempts": 1}
    started = time.monotonic()
    try:
        response = client.request("POST", path, json_body=spec["body"], headers=spec["headers"],
                                  timeout=timeout, stream=spec["stream"])
        result["attempts"] = getattr(response, "attempts", 1)
        result["status"] = response.status
        kind = status_kind(response.status)
        if kind:
            text = response.text()
            result["kind"] = kind
            result["error"] = "HTTP %s from %s: %s" % (response.status, response.url, text[:200])
            return result
        if spec["stream"]:
            _read_stream(response, result, started)
        else:
            payload = response.json()
            if not isinstance(payload, dict) or not isinstance(payload.get("choices"), list):
                raise HttpError("invalid_response", "answer from %s has no choices: %s"
                                % (response.url, json.dumps(payload)[:200]), url=response.url)
            result["usage"] = _usage(payload.get("usage"))
        result["latency"] = time.monotonic() - started
    except HttpError as exc:
        result["attempts"] = getattr(exc, "attempts", result["attempts"])
        result["kind"] = exc.kind
        result["error"] = str(exc)
    return result


def _read_stream(response, result, started):
    done = False
    for data in response.iter_sse_data():
        if data == "[DONE]":
            done = True
            continue
        try:
            chunk = json.loads(data)
        except ValueError:
            raise HttpError("invalid_response", "stream from %s sent a chunk that is not JSON: %r" % (response.url, data[:120]),
                            url=response.url)
        for choice in chunk.get("choices") or []:
            content = (choice.get("delta") or {}).get("content")
            if content and result["ttft"] is None:
                result["ttft"] = time.monotonic() - started
        if chunk.get("usage"):
            result["usage"] = _usage(chunk["usage"])
    if not done:
        raise HttpError("invalid_response", "stream from %s ended without 'data: [DONE]'" % response.url, url=response.url)


def run_traffic(client, params, sender=send_one):
    """Run the workers; return (results, wall seconds)."""
    models = model_cycle(params["models"])
    duration = params.get("duration")
    total = None if duration else (params.get("requests") if params.get("requests") is not None else DEFAULT_REQUESTS)
    workers = max(1, params["concurrency"] if total is None else min(params["concurrency"], max(total, 1)))
    results = []
    lock = threading.Lock()
    state = {"next": 0}
    started = time.monotonic()
    deadline = started + duration if duration else None

    def take():
        with lock:
            if total is not None and state["next"] >= total:
                return None
            if deadline is not None and time.monotonic() >= deadline:
                return None
            index = state["next"]
            state["next"] += 1
            return index

    def worker():
        try:
            first = True
            while True:
                if not first and params["pause"]:
                    if deadline is not None and time.monotonic() + params["pause"] >= deadline:
                        return
                    time.sleep(params["pause"])
                first = False
                index = take()
                if index is None:
                    return
                result = sender(client, params["path"], request_spec(index, params, models), params["timeout"])
                with lock:
                    results.append(result)
        finally:
            client.close()

    if total == 0:
        return results, 0.0
    threads = [threading.Thread(target=worker, name="openai-traffic-%d" % n) for n in range(workers)]
    for thread in threads:
        thread.daemon = True
        thread.start()
    for thread in threads:
        thread.join()
    return results, time.monotonic() - started


def _ms(value):
    return None if value is None else round(value * 1000.0, 2)


def summarize(results, wall, url, concurrency):
    """The module's statistics for ``results`` (see RETURN)."""
    sent = len(results)
    status_counts, errors, samples, by_model = {}, {}, [], {}
    tokens = {"prompt": 0, "completion": 0, "total": 0}
    latencies, ttfts = [], []
    for result in results:
        model = by_model.setdefault(result["model"], {"requests": 0, "failures": 0})
        model["requests"] += 1
        if result["status"] is not None:
            key = str(result["status"])
            status_counts[key] = status_counts.get(key, 0) + 1
        if result["kind"]:
            model["failures"] += 1
            errors[result["kind"]] = errors.get(result["kind"], 0) + 1
            if result["error"] and result["error"] not in samples and len(samples) < 5:
                samples.append(result["error"])
            continue
        latencies.append(result["latency"])
        if result["ttft"] is not None:
            ttfts.append(result["ttft"])
        for key in tokens:
            tokens[key] += (result["usage"] or {}).get(key, 0)
    failed = sum(errors.values())
    latencies.sort()
    ttfts.sort()
    stats = {
        "url": url,
        "requests": sent,
        "http_attempts": sum(result["attempts"] for result in results),
        "succeeded": sent - failed,
        "failures": failed,
        "error_ratio": round(failed / sent, 4) if sent else 0.0,
        "status_counts": status_counts,
        "errors": errors,
        "error_samples": samples,
        "latency_ms": {
            "min": _ms(latencies[0] if latencies else None),
            "mean": _ms(sum(latencies) / len(latencies) if latencies else None),
            "p50": _ms(percentile(latencies, 50)),
            "p95": _ms(percentile(latencies, 95)),
            "p99": _ms(percentile(latencies, 99)),
            "max": _ms(latencies[-1] if latencies else None),
        },
        "ttft_ms": {"count": len(ttfts), "p50": _ms(percentile(ttfts, 50)), "p95": _ms(percentile(ttfts, 95)),
                    "p99": _ms(percentile(ttfts, 99))},
        "tokens": tokens,
        "streamed": sum(1 for result in results if result["stream"]),
        "by_model": by_model,
        "duration_seconds": round(wall, 3),
        "requests_per_second": round(sent / wall, 2) if wall > 0 else 0.0,
        "concurrency": concurrency,
    }
    stats["summary"] = summary_lines(stats)
    return stats


def summary_lines(stats):
    lat, ttft, tok = stats["latency_ms"], stats["ttft_ms"], stats["tokens"]
    lines = [
        "%d requests to %s in %.2fs (%.1f req/s, concurrency %d), %d streamed"
        % (stats["requests"], stats["url"], stats["duration_seconds"], stats["requests_per_second"],
           stats["concurrency"], stats["streamed"]),
        "ok %d, failed %d (ratio %.3f); statuses %s; errors %s"
        % (stats["succeeded"], stats["failures"], stats["error_ratio"],
           json.dumps(stats["status_counts"], sort_keys=True), json.dumps(stats["errors"], sort_keys=True)),
        "latency ms p50 %s p95 %s p99 %s max %s" % (lat["p50"], lat["p95"], lat["p99"], lat["max"]),
        "tokens prompt %d completion %d total %d" % (tok["prompt"], tok["completion"], tok["total"]),
    ]
    if ttft["count"]:
        lines.append("time to first token ms p50 %s p95 %s p99 %s (%d streams)"
                     % (ttft["p50"], ttft["p95"], ttft["p99"], ttft["count"]))
    lines.append("models " + ", ".join("%s %d/%d failed" % (name, value["failures"], value["requests"])
                                       for name, value in sorted(stats["by_model"].items())))
    for sample in stats["error_samples"][:2]:
        lines.append("error: " + sample[:160])
    return lines


def masked(headers):
    return {k: ("********" if k.lower() in SECRET_HEADERS else v) for k, v in headers.items()}


def validate(params):
    if params["concurrency"] < 1:
        raise TrafficError("concurrency must be at least 1, got %d" % params["concurrency"])
    if params["requests"] is not None and params["requests"] < 0:
        raise TrafficError("requests must be 0 or more, got %d" % params["requests"])
    if params["duration"] is not None and params["duration"] <= 0:
        raise TrafficError("duration must be a number of seconds above 0, got %s" % params["duration"])
    if not 0.0 <= params["stream_ratio"] <= 1.0:
        raise TrafficError("stream_ratio must be between 0 and 1, got %s" % params["stream_ratio"])
    if not 0.0 <= params["max_error_ratio"] <= 1.0:
        raise TrafficError("max_error_ratio must be between 0 and 1, got %s" % params["max_error_ratio"])
    if params["timeout"] <= 0:
        raise TrafficError("timeout must be above 0 seconds, got %s" % params["timeout"])
    if params["retries"] < 0 or params["pause"] < 0 or params["max_tokens"] < 0:
        raise TrafficError("retries, pause and max_tokens must not be negative")
    if not params["base_url"].startswith(("http://", "https://")):
        raise TrafficError("base_url must start with http:// or https://, got %r" % params["base_url"])
    if not params["path"].startswith("/"):
        raise TrafficError("path must start with /, got %r" % params["path"])
    for index, entry in enumerate(params["header_mix"] or []):
        if not isinstance(entry, dict):
            raise TrafficError("header_mix[%d] must be a mapping of header names to values" % index)
    validate_scenarios(params)
    return model_cycle(params["models"])


# ---- beyond chat: MCP sessions, a prompt the guard rejects, a guard failing open, a retried route -------
# Bounded, sequential exchanges sent after the chat traffic (the retried route's mock alternates between
# failing and answering, which concurrent requests would interleave). Each outcome is expected or not:
# the guard's 403 and the failing tool's JSON-RPC error are expected; anything else unexpected is a failure.
# A prompt carrying FAIL_OPEN_MARKER makes the mock backend's guardrail webhook answer 503 (the marker of
# plugins/plugin_utils/wiremock_guardrail.py, kept in step by its unit test); its guard fails open, so the
# prompt must be answered 200 like any other.

SCENARIOS = ("mcp", "guard", "fail_open", "retry")
FAIL_OPEN_MARKER = "mock-guardrail-unavailable"
FAIL_OPEN_PROMPT = ("Summarise the observability demo in one line (%s: the mock guardrail webhook is down for this "
                    "prompt, so the prompt guard fails open)." % FAIL_OPEN_MARKER)

DEFAULT_MCP_TOOL_CALLS = (
    {"name": "echo", "arguments": {"text": "agentgateway.observability demo"}, "expect_error": False},
    {"name": "fail", "arguments": {}, "expect_error": True},
)


def mcp_tool_calls(params):
    """The tool calls of each MCP session, validated: ``[{name, arguments, expect_error}]``."""
    calls = params.get("mcp_tool_calls")
    calls = list(DEFAULT_MCP_TOOL_CALLS) if calls is None else calls
    out = []
    for index, call in enumerate(calls):
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            raise TrafficError("mcp_tool_calls[%d] must be a mapping with a tool name, got %r" % (index, call))
        unknown = sorted(set(call) - {"name", "arguments", "expect_error"})
        if unknown:
            raise TrafficError("mcp_tool_calls[%d]: unknown keys %s (allowed: name, arguments, expect_error)"
                               % (index, ", ".join(unknown)))
        arguments = call.get("arguments") or {}
        if not isinstance(arguments, dict):
            raise TrafficError("mcp_tool_calls[%d].arguments must be a mapping, got %r" % (index, arguments))
        out.append({"name": call["name"], "arguments": arguments, "expect_error": bool(call.get("expect_error"))})
    return out


def scenario_plan(params):
    """What the scenarios send (also what check mode shows): ``{mcp, guard, fail_open, retry}``, each or None."""
    plan = dict.fromkeys(SCENARIOS)
    if params.get("mcp_sessions"):
        calls = mcp_tool_calls(params)
        plan["mcp"] = {"path": params["mcp_path"], "sessions": params["mcp_sessions"],
                       "messages": ["initialize", "notifications/initialized", "tools/list"]
                       + ["tools/call %s%s" % (c["name"], " (expects a JSON-RPC error)" if c["expect_error"] else "")
                          for c in calls]}
    if params.get("guard_requests"):
        plan["guard"] = {"path": params["path"], "requests": params["guard_requests"],
                         "expect_status": params.get("guard_status") or 403,
                         "body": guard_body(params)}
    if params.get("guard_fail_open_requests"):
        plan["fail_open"] = {"path": params["path"], "requests": params["guard_fail_open_requests"],
                             "expect_status": 200, "body": fail_open_body(params)}
    if params.get("retry_requests"):
        plan["retry"] = {"path": params["retry_path"], "requests": params["retry_requests"],
                         "body": retry_body(params)}
    return plan


def _prompt_body(params, prompt):
    body = {"model": model_cycle(params["models"])[0], "messages": [{"role": "user", "content": prompt}]}
    if params["max_tokens"]:
        body["max_tokens"] = params["max_tokens"]
    return body


def guard_body(params):
    return _prompt_body(params, params["guard_prompt"])


def fail_open_body(params):
    return _prompt_body(params, params.get("guard_fail_open_prompt") or FAIL_OPEN_PROMPT)


def retry_body(params):
    content = "Retried request of the agentgateway.observability demo"
    body = {"model": params["retry_model"], "messages": [{"role": "user", "content": content}]}
    if params["max_tokens"]:
        body["max_tokens"] = params["max_tokens"]
    return body


def _outcome(store, expected, status=None, error=None):
    store["requests"] += 1
    if status is not None:
        store["statuses"][str(status)] = store["statuses"].get(str(status), 0) + 1
    if expected:
        store["expected"] += 1
    else:
        store["failures"] += 1
        if error and error not in store["error_samples"] and len(store["error_samples"]) < 3:
            store["error_samples"].append(error)


def _store(**extra):
    return dict({"requests": 0, "expected": 0, "failures": 0, "statuses": {}, "error_samples": []}, **extra)


def run_mcp(client, params, session_factory=None):
    """``mcp_sessions`` sessions: initialize (+ notifications/initialized), tools/list, the tool calls."""
    from ansible_collections.agentgateway.observability.plugins.module_utils.mcp_client import (  # pylint: disable=import-outside-toplevel
        McpError,
        McpSession,
    )
    factory = session_factory or (lambda: McpSession(client, params["mcp_path"], timeout=params["timeout"],
                                                     headers=params.get("headers")))
    calls = mcp_tool_calls(params)
    store = _store(sessions=params["mcp_sessions"], by_method={}, tools={}, server=None)
    for _number in range(params["mcp_sessions"]):
        session = factory()
        try:
            session.initialize()
            store["server"] = (session.server_info or {}).get("name") or store["server"]
            listed = session.list_tools()
            for call in calls:
                if call["name"] not in listed:
                    session.calls.append({"method": "tools/call", "tool": call["name"], "status": None,
                                          "outcome": "failed", "code": None, "latency": 0.0,
                                          "error": "tool %s is not in tools/list (%s)" % (call["name"], ", ".join(listed))})
                    continue
                try:
                    session.call_tool(call["name"], call["arguments"])
                except McpError as exc:
                    if exc.kind != "jsonrpc":
                        raise
        except McpError:
            pass  # recorded in session.calls; the session's remaining messages are not sent
        finally:
            session.close()
        expected_errors = {c["name"]: c["expect_error"] for c in calls}
        for entry in session.calls:
            key = entry["method"] + (" " + entry["tool"] if entry.get("tool") else "")
            store["by_method"][key] = store["by_method"].get(key, 0) + 1
            if entry.get("tool"):
                tool = store["tools"].setdefault(entry["tool"], {"ok": 0, "error": 0})
                tool["error" if entry["outcome"] in ("tool_error", "failed") else "ok"] += 1
            if entry["outcome"] == "tool_error":
                expected = expected_errors.get(entry["tool"], False)
                error = None if expected else "tools/call %s: %s" % (entry["tool"], entry["error"])
            elif entry["outcome"] in ("ok", "accepted"):
                expected = not (entry.get("tool") and expected_errors.get(entry["tool"]))
                error = None if expected else "tools/call %s succeeded but was expected to fail" % entry["tool"]
            else:
                expected, error = False, "%s: %s" % (key, entry["error"])
            _outcome(store, expected, entry["status"], error)
    return store


def run_guard(client, params):
    """``guard_requests`` chat completions whose prompt the gateway's prompt guard must reject."""
    store = _store()
    want = params.get("guard_status") or 403
    for _number in range(params["guard_requests"]):
        try:
            response = client.request("POST", params["path"], json_body=guard_body(params),
                                      headers={"Accept": "application/json"}, timeout=params["timeout"])
            response.read()
        except HttpError as exc:
            _outcome(store, False, None, str(exc))
            continue
        ok = response.status == want
        _outcome(store, ok, response.status, None if ok else
                 "the prompt guard let a marked prompt through: HTTP %d from %s (expected %d)"
                 % (response.status, response.url, want))
    store["rejected"] = store["expected"]
    return store


def run_fail_open(client, params):
    """``guard_fail_open_requests`` chat completions whose prompt makes the guardrail webhook fail: the guard must
    fail open, so each must end with 200 and a chat completion, like any other prompt."""
    store = _store()
    spec = {"index": 0, "model": model_cycle(params["models"])[0], "stream": False, "body": fail_open_body(params),
            "headers": {"Accept": "application/json"}}
    for _number in range(params["guard_fail_open_requests"]):
        result = send_one(client, params["path"], spec, params["timeout"])
        _outcome(store, result["kind"] is None, result["status"], None if result["kind"] is None else
                 "the prompt guard did not fail open when its webhook failed (is its failureMode FailOpen?): %s"
                 % result["error"])
    store["passed"] = store["expected"]
    return store


def run_retry(client, params):
    """``retry_requests`` chat completions to the retried route: each must end with 200 (the gateway retries)."""
    store = _store()
    spec = {"index": 0, "model": params["retry_model"], "stream": False, "body": retry_body(params),
            "headers": {"Accept": "application/json"}}
    for _number in range(params["retry_requests"]):
        result = send_one(client, params["retry_path"], spec, params["timeout"])
        _outcome(store, result["kind"] is None, result["status"], result["error"])
    store["succeeded"] = store["expected"]
    return store


def run_scenarios(client, params):
    """Every scenario the parameters ask for, in turn; ``{mcp, guard, fail_open, retry}`` (None when not asked for)."""
    out = dict.fromkeys(SCENARIOS)
    if params.get("mcp_sessions"):
        out["mcp"] = run_mcp(client, params)
    if params.get("guard_requests"):
        out["guard"] = run_guard(client, params)
    if params.get("guard_fail_open_requests"):
        out["fail_open"] = run_fail_open(client, params)
    if params.get("retry_requests"):
        out["retry"] = run_retry(client, params)
    return out


def scenario_totals(scenarios):
    sent = sum(s["requests"] for s in scenarios.values() if s)
    failed = sum(s["failures"] for s in scenarios.values() if s)
    return {"requests": sent, "failures": failed, "error_ratio": round(failed / sent, 4) if sent else 0.0}


def scenario_lines(scenarios):
    lines = []
    mcp, guard, retry = scenarios.get("mcp"), scenarios.get("guard"), scenarios.get("retry")
    fail_open = scenarios.get("fail_open")
    if mcp:
        lines.append("mcp %d session(s) (server %s): %d exchanges %s; %d as expected, failed %d"
                     % (mcp["sessions"], mcp["server"] or "?", mcp["requests"],
                        json.dumps(mcp["by_method"], sort_keys=True), mcp["expected"], mcp["failures"]))
    if guard:
        lines.append("guard %d marked prompt(s): %d rejected as expected, failed %d; statuses %s"
                     % (guard["requests"], guard["rejected"], guard["failures"],
                        json.dumps(guard["statuses"], sort_keys=True)))
    if fail_open:
        lines.append("guard fail-open %d prompt(s) its webhook fails on: %d answered (the guard failed open), failed %d; "
                     "statuses %s" % (fail_open["requests"], fail_open["passed"], fail_open["failures"],
                                      json.dumps(fail_open["statuses"], sort_keys=True)))
    if retry:
        lines.append("retry %d request(s) to the retried route: %d answered, failed %d; statuses %s"
                     % (retry["requests"], retry["succeeded"], retry["failures"],
                        json.dumps(retry["statuses"], sort_keys=True)))
    for scenario in (mcp, guard, fail_open, retry):
        for sample in (scenario or {}).get("error_samples", [])[:1]:
            lines.append("error: " + sample[:160])
    return lines


def validate_scenarios(params):
    """Errors in the scenario options (see the module's documentation)."""
    for name in ("mcp_sessions", "guard_requests", "guard_fail_open_requests", "retry_requests"):
        if (params.get(name) or 0) < 0:
            raise TrafficError("%s must be 0 or more, got %d" % (name, params[name]))
    if params.get("mcp_sessions"):
        if not str(params.get("mcp_path") or "").startswith("/"):
            raise TrafficError("mcp_path must start with /, got %r" % params.get("mcp_path"))
        mcp_tool_calls(params)
    if params.get("guard_requests"):
        if not (params.get("guard_prompt") or "").strip():
            raise TrafficError("guard_prompt must be a prompt the gateway's prompt guard rejects when guard_requests "
                               "is above 0")
        if not 400 <= (params.get("guard_status") or 403) <= 599:
            raise TrafficError("guard_status must be an HTTP error status (400-599), got %s" % params.get("guard_status"))
    if params.get("guard_fail_open_requests") and not (params.get("guard_fail_open_prompt") or FAIL_OPEN_PROMPT).strip():
        raise TrafficError("guard_fail_open_prompt must be a prompt when guard_fail_open_requests is above 0")
    if params.get("retry_requests"):
        if not str(params.get("retry_path") or "").startswith("/"):
            raise TrafficError("retry_path must start with /, got %r" % params.get("retry_path"))
        if not params.get("retry_model"):
            raise TrafficError("retry_model must name the model of the retried route (e.g. mock-flaky)")
