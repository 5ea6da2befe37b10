# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks against the Tempo HTTP API (tempo_search).

Endpoints, as Tempo's API reference describes them (https://grafana.com/docs/tempo/latest/api_docs/):

* ``GET /ready`` -> 200 when ready;
* ``GET /api/v2/traces/<traceid>`` -> a query response holding an OpenTelemetry JSON trace
  (``{"trace": {"resourceSpans": [...]}}``); ``GET /api/traces/<traceid>`` (v1) -> the OTLP JSON
  trace itself (``{"batches": [...]}`` in Tempo 2, ``resourceSpans`` in the OTLP spelling);
  404 when no such trace is stored;
* ``GET /api/search?q=<TraceQL>&limit=&start=&end=`` -> ``{"traces": [{"traceID", "rootServiceName",
  "rootTraceName", "spanSets": [...]}]}``.

Span attributes are OTLP ``KeyValue``s: ``{"key": ..., "value": {"stringValue" | "intValue" |
"doubleValue" | "boolValue": ...}}`` (``intValue`` is a string in protobuf's JSON mapping).
Tempo cannot run on the machines that test this collection: these shapes are covered by contract
tests (tests/functional/test_contract_tempo_loki.py), not by a live Tempo.
"""

from __future__ import annotations

import re
import time

from ansible_collections.agentgateway.observability.plugins.module_utils.probe import api_check, run_ready

TRACE_ID = re.compile(r"^[0-9a-f]{1,32}$")


def normalize_trace_id(trace_id):
    value = str(trace_id).strip().lower()
    if not TRACE_ID.match(value) or not int(value, 16):
        raise ValueError("%r is not a trace id (up to 32 hex digits, not all zero)" % trace_id)
    return value.rjust(32, "0")


def attribute_value(value):
    """The Python value of an OTLP JSON AnyValue."""
    if not isinstance(value, dict):
        return value
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        try:
            return int(value["intValue"])
        except (TypeError, ValueError):
            return value["intValue"]
    if "arrayValue" in value:
        return [attribute_value(v) for v in (value["arrayValue"].get("values") or [])]
    if "kvlistValue" in value:
        return {kv.get("key"): attribute_value(kv.get("value")) for kv in (value["kvlistValue"].get("values") or [])}
    return None


def _attributes(items):
    return {kv.get("key"): attribute_value(kv.get("value")) for kv in items or [] if isinstance(kv, dict)}


def spans_of(document):
    """[(resource attributes, span)] of a trace document in any of Tempo's JSON shapes."""
    trace = document.get("trace", document) if isinstance(document, dict) else {}
    batches = (trace or {}).get("resourceSpans") or (trace or {}).get("batches") or []
    out = []
    for batch in batches:
        resource = _attributes(((batch.get("resource") or {}).get("attributes")))
        for scope in (batch.get("scopeSpans") or batch.get("instrumentationLibrarySpans") or []):
            for span in scope.get("spans") or []:
                out.append((resource, span))
    return out


def _matches(actual, expected):
    if expected in ("*", None):
        return actual is not None
    if isinstance(actual, bool) or isinstance(expected, bool):
        return str(actual).lower() == str(expected).lower()
    if isinstance(actual, (int, float)) and not isinstance(actual, bool):
        try:
            return float(actual) == float(expected)
        except (TypeError, ValueError):
            return False
    return str(actual) == str(expected)


def evaluate_trace(expected_attributes):
    """An evaluate() that passes when one span of the trace carries every expected attribute."""
    expected = dict(expected_attributes or {})

    def evaluate(document):
        spans = spans_of(document)
        if not spans:
            return False, "the trace has no spans", "trace_missing", {}
        best, best_missing = None, None
        for resource, span in spans:
            attrs = _attributes(span.get("attributes"))
            missing = []
            for key, want in expected.items():
                actual = resource.get(key[len("resource."):]) if key.startswith("resource.") else attrs.get(key)
                if not _matches(actual, want):
                    missing.append("%s=%s (span has %r)" % (key, want, actual))
            if best_missing is None or len(missing) < len(best_missing):
                best, best_missing = (resource, span, attrs), missing
        resource, span, attrs = best
        shown_attrs = {k: v for k, v in sorted(attrs.items()) if k.startswith(("gen_ai.", "llm.", "agw."))}
        details = {"spans": len(spans), "span": span.get("name"), "service": resource.get("service.name"),
                   "attributes": shown_attrs}
        shown = "%d span(s); best span %r of service %r with %s" % (
            len(spans), span.get("name"), resource.get("service.name"),
            ", ".join("%s=%s" % kv for kv in shown_attrs.items()) or "no gen_ai.* attributes")
        if best_missing:
            return False, "%s; missing %s" % (shown, "; ".join(best_missing)), "attribute_missing", details
        return True, shown, None, details
    return evaluate


def trace_check(access, trace_id, attributes, deadline, backoff, api_version="v2", title=None):
    path = ("/api/v2/traces/%s" if api_version == "v2" else "/api/traces/%s") % trace_id
    return api_check(access, "tempo.trace.%s" % trace_id, title or "Tempo returns trace %s" % trace_id, "tempo",
                     path, evaluate_trace(attributes), deadline, backoff, status_causes={404: "trace_missing"},
                     headers={"Accept": "application/json"})


def evaluate_search(min_traces, expect_ids):
    def evaluate(document):
        traces = document.get("traces") or []
        ids = [str(t.get("traceID", "")).lower().rjust(32, "0") for t in traces]
        details = {"traces": [{"traceID": t.get("traceID"), "rootServiceName": t.get("rootServiceName"),
                               "rootTraceName": t.get("rootTraceName")} for t in traces[:50]]}
        shown = "%d trace(s): %s" % (len(traces), ", ".join(
            "%s (%s %s)" % (t.get("traceID"), t.get("rootServiceName"), t.get("rootTraceName")) for t in traces[:5]))
        missing = [i for i in expect_ids or [] if i not in ids]
        if missing:
            return False, "%s; not found: %s" % (shown, ", ".join(missing)), "trace_missing", details
        if len(traces) < min_traces:
            return False, "%s; at least %d expected" % (shown, min_traces), "trace_missing", details
        return True, shown, None, details
    return evaluate


def search_check(access, query, deadline, backoff, min_traces=1, limit=20, since=3600, expect_ids=None):
    now = int(time.time())
    params = {"q": query, "limit": limit, "start": now - int(since), "end": now + 60}
    return api_check(access, "tempo.search", "TraceQL %s finds traces" % query, "tempo", "/api/search",
                     evaluate_search(min_traces, expect_ids), deadline, backoff, params=params)


def ready_check(access, deadline, backoff):
    return run_ready(access, "tempo.ready", "Tempo is ready", "tempo", "/ready", deadline, backoff)
