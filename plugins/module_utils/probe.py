# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Many HTTP checks at once, each with its expected status and body, until a deadline (service_probe).

A check (``run_checks``) is a dict: ``id``, ``title``, ``label`` (the component, for fixes),
``service`` (see access.ServiceAccess), ``method``, ``path``, ``params``, ``headers``, ``body``,
``status`` (accepted statuses), ``json`` ([{path, equals, regex, min_count, exists}]),
``fixes`` (cause -> fix text),
``body_regex``, ``metric`` ({name, labels, min, max}: a sum over a Prometheus text exposition),
``username``/``password``/``bearer_token``, ``deadline``, and ``cause``/``fix``/``explanation``
to use when the answer arrives but does not meet the expectations.

Checks run in a thread pool; each polls until it passes or its deadline ends (access.poll).
"""

from __future__ import annotations

import json
import re
import threading
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.agentgateway.observability.plugins.module_utils import checks as agw_checks
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    AccessError,
    Deadline,
    Outcome,
    classify_error,
    classify_response,
    poll,
)
from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpError

SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def _short(value, limit=120):
    text = value if isinstance(value, str) else json.dumps(value, sort_keys=True, default=str)
    return text if len(text) <= limit else text[:limit] + "..."


def _same(actual, expected):
    if actual == expected:
        return True
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    return str(actual) == str(expected)


def check_json(document, expectation):
    """(ok, what was seen) for one ``json`` expectation."""
    path = expectation["path"]
    values = agw_checks.json_path(document, path)
    shown = "%s = %s" % (path, _short(values[:5]) + (" (+%d more)" % (len(values) - 5) if len(values) > 5 else ""))
    exists = expectation.get("exists")
    if exists is False:
        return (not values), shown
    minimum = expectation.get("min_count")
    if minimum is None:
        minimum = 1
    if len(values) < minimum:
        return False, "%s (%d value(s), at least %d expected)" % (shown, len(values), minimum)
    if expectation.get("equals") is not None:
        bad = [v for v in values if not _same(v, expectation["equals"])]
        if bad:
            return False, "%s (expected %s)" % (shown, _short(expectation["equals"]))
    if expectation.get("regex"):
        pattern = re.compile(expectation["regex"])
        bad = [v for v in values if not pattern.search(v if isinstance(v, str) else json.dumps(v))]
        if bad:
            return False, "%s (expected to match /%s/)" % (shown, expectation["regex"])
    return True, shown


def evaluate(spec, response):
    """(ok, what was seen, details) of an answer with an accepted status."""
    seen, details, ok = ["HTTP %d" % response.status], {"http_status": response.status}, True
    text = None
    if spec.get("body_regex"):
        text = response.text()
        if not re.search(spec["body_regex"], text):
            ok = False
            seen.append("body does not match /%s/: %s" % (spec["body_regex"], _short(text)))
        else:
            seen.append("body matches /%s/" % spec["body_regex"])
    if spec.get("json"):
        try:
            document = response.json()
        except HttpError as exc:
            return False, "%s; %s" % ("; ".join(seen), exc.message), details
        details["json"] = {}
        for expectation in spec["json"]:
            passed, shown = check_json(document, expectation)
            details["json"][expectation["path"]] = agw_checks.json_path(document, expectation["path"])[:20]
            ok = ok and passed
            seen.append(shown)
    if spec.get("metric"):
        metric = spec["metric"]
        text = text if text is not None else response.text()
        total, series = agw_checks.metric_sum(text, metric["name"], metric.get("labels"))
        details["metric"] = {"name": metric["name"], "sum": total, "series": series}
        shown = "sum(%s%s) = %g over %d series" % (
            metric["name"], _short(metric.get("labels")) if metric.get("labels") else "", total, series)
        if series == 0 and (metric.get("min") is not None or metric.get("max") is not None):
            ok = False
            shown += " (metric not found)"
        if metric.get("min") is not None and total < float(metric["min"]):
            ok = False
            shown += " (at least %g expected)" % float(metric["min"])
        if metric.get("max") is not None and total > float(metric["max"]):
            ok = False
            shown += " (at most %g expected)" % float(metric["max"])
        seen.append(shown)
    return ok, "; ".join(seen), details


def describe_request(spec, access):
    headers = spec.get("headers") or {}
    shown = ", ".join("%s: %s" % (k, "***" if k.lower() in ("authorization", "cookie") else v)
                      for k, v in sorted(headers.items()))
    expect = ["status %s" % "/".join(str(s) for s in spec.get("status") or [200])]
    for exp in spec.get("json") or []:
        expect.append(exp["path"] + (" equals %s" % _short(exp["equals"]) if exp.get("equals") is not None else
                                     " matches /%s/" % exp["regex"] if exp.get("regex") else
                                     " absent" if exp.get("exists") is False else " present"))
    if spec.get("metric"):
        metric = spec["metric"]
        bounds = [b for b in (">= %g" % metric["min"] if metric.get("min") is not None else "",
                              "<= %g" % metric["max"] if metric.get("max") is not None else "") if b]
        expect.append("sum(%s) %s" % (metric["name"], " and ".join(bounds) or "read"))
    if spec.get("body_regex"):
        expect.append("body matches /%s/" % spec["body_regex"])
    return "%s %s%s, expecting %s" % (spec.get("method", "GET"), access.url(spec.get("path") or "/"),
                                      (" [%s]" % shown) if shown else "", ", ".join(expect))


def run_check(services, spec, default_deadline, backoff=0.5, check_mode=False):
    """One check to its end; returns a check result (module_utils/checks.result)."""
    check_id = spec["id"]
    title = spec.get("title") or check_id
    label = spec.get("label") or check_id.split(".")[0]
    method = (spec.get("method") or "GET").upper()
    deadline = Deadline(spec.get("deadline") or default_deadline)
    try:
        access = services.open(spec.get("service") or {}, label, username=spec.get("username"),
                               password=spec.get("password"), bearer_token=spec.get("bearer_token"))
    except AccessError as exc:
        return agw_checks.result(check_id, title, label, False, "open %s" % label, str(exc), cause="config")
    tried = describe_request(spec, access)
    if check_mode and method not in SAFE_METHODS:
        return agw_checks.result(check_id, title, label, False, tried, "not sent in check mode (%s changes "
                                 "state or sends traffic)" % method, access=access, skipped=True)
    accepted = set(spec.get("status") or [200])
    body, json_body = spec.get("body"), None
    if body is not None and not isinstance(body, (str, bytes)):
        json_body, body = body, None
    state = {"details": {}}

    def attempt():
        try:
            response = access.request(method, spec.get("path") or "/", deadline=deadline, params=spec.get("params"),
                                      headers=spec.get("headers"), body=body, json_body=json_body)
        except HttpError as exc:
            cause, saw = classify_error(exc)
            return Outcome(False, cause, saw)
        state["details"] = {"http_status": response.status, "url": response.url}
        if response.status not in accepted:
            if 200 <= response.status < 300:
                return Outcome(False, "expectation", "HTTP %d, expected %s" % (response.status, sorted(accepted)))
            cause, saw = classify_response(response, access.via_proxy)
            return Outcome(False, cause, saw, status=response.status)
        ok, saw, details = evaluate(spec, response)
        details["url"] = response.url
        state["details"] = details
        return Outcome(ok, None if ok else "expectation", saw, status=response.status)

    outcome = poll(deadline, attempt, backoff=backoff)
    cause = outcome.cause
    fix = explanation = None
    if not outcome.ok and cause == "expectation":
        cause = spec.get("cause") or "expectation"
        fix, explanation = spec.get("fix"), spec.get("explanation")
    if not outcome.ok and cause in (spec.get("fixes") or {}):
        fix = spec["fixes"][cause]
    return agw_checks.result(check_id, title, label, outcome.ok, tried, outcome.saw, cause=cause, access=access,
                             fix=fix, explanation=explanation, attempts=outcome.attempts, elapsed=deadline.elapsed(),
                             details=state["details"])


def run_checks(services, specs, concurrency=8, default_deadline=30.0, backoff=0.5, check_mode=False):
    """Every check, ``concurrency`` at a time; results in the order of ``specs``."""
    results = [None] * len(specs)
    lock = threading.Lock()

    def work(index):
        outcome = run_check(services, specs[index], default_deadline, backoff, check_mode)
        with lock:
            results[index] = outcome

    workers = max(1, min(int(concurrency), len(specs) or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        list(pool.map(work, range(len(specs))))
    return results


def api_check(access, check_id, title, label, path, evaluate, deadline, backoff=0.5, method="GET", params=None,
              json_body=None, headers=None, status_causes=None, tried=None, fix=None, body_statuses=()):
    """Poll a JSON API until ``evaluate(document)`` passes or the deadline ends; a check result.

    ``evaluate`` returns ``(ok, saw, cause, details)``; a failing cause is retried like an unmet
    expectation. ``status_causes`` maps an HTTP status to a cause (Tempo's 404 is "trace missing").
    ``body_statuses`` are error statuses whose JSON body is evaluated like a 2xx answer (Grafana
    reports a failed datasource health check or query as 400 with the reason in the body).
    """
    state = {"details": {}, "cause": None}
    tried = tried or "%s %s%s" % (method, access.url(path), ("?" + "&".join("%s=%s" % kv for kv in sorted(
        (params or {}).items()))) if params else "")

    def attempt():
        try:
            response = access.request(method, path, deadline=deadline, params=params, json_body=json_body,
                                      headers=headers)
        except HttpError as exc:
            cause, saw = classify_error(exc)
            state["cause"] = cause
            return Outcome(False, cause, saw)
        if status_causes and response.status in status_causes:
            state["cause"] = status_causes[response.status]
            return Outcome(False, "expectation", "HTTP %d: %s" % (response.status, _short(response.text(), 200)),
                           status=response.status)
        if not 200 <= response.status < 300 and response.status not in body_statuses:
            cause, saw = classify_response(response, access.via_proxy)
            state["cause"] = cause
            return Outcome(False, cause, saw, status=response.status)
        try:
            document = response.json()
        except HttpError as exc:
            state["cause"] = "invalid_response"
            return Outcome(False, "invalid_response", exc.message, status=response.status)
        ok, saw, cause, details = evaluate(document)
        state["details"] = details or {}
        state["cause"] = None if ok else (cause or "expectation")
        return Outcome(ok, None if ok else "expectation", saw, status=response.status)

    outcome = poll(deadline, attempt, backoff=backoff)
    return agw_checks.result(check_id, title, label, outcome.ok, tried, outcome.saw, cause=state["cause"],
                             access=access, fix=fix, attempts=outcome.attempts, elapsed=deadline.elapsed(),
                             details=state["details"])


def run_ready(access, check_id, title, label, path, deadline, backoff=0.5):
    """``GET path`` answers 2xx before the deadline (a readiness endpoint)."""
    def attempt():
        outcome = access.attempt("GET", path, deadline=deadline)
        if outcome.ok:
            outcome.saw = "HTTP %d %s" % (outcome.status, _short(outcome.data.text().strip(), 80))
        return outcome

    outcome = poll(deadline, attempt, backoff=backoff)
    return agw_checks.result(check_id, title, label, outcome.ok, "GET %s" % access.url(path), outcome.saw,
                             cause=outcome.cause, access=access, attempts=outcome.attempts,
                             elapsed=deadline.elapsed())
