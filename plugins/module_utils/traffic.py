# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenAI-style test traffic: request plans, the concurrent send loop and its summary.

The logic behind the openai_traffic module, kept here so the module stays a thin wrapper and the
benchmark and tests drive the same code.
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
    return model_cycle(params["models"])
