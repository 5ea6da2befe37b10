# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks against the Loki HTTP API (loki_query).

Endpoints, as Loki's HTTP API reference describes them
(https://grafana.com/docs/loki/latest/reference/loki-http-api/):

* ``GET /ready`` -> 200 when ready;
* ``GET /loki/api/v1/query_range?query=<LogQL>&start=<ns>&end=<ns>&limit=&direction=`` ->
  ``{"status": "success", "data": {"resultType": "streams", "result": [{"stream": {labels},
  "values": [["<ns timestamp>", "<line>"], ...]}]}}``; ``X-Scope-OrgID`` names the tenant when
  multi-tenancy is on.

Logs that arrive over OTLP keep their trace id as structured metadata ``trace_id`` (Loki's OTLP
ingestion docs, "Format considerations"), so ``{service_name=~".+"} | trace_id="<id>"`` finds
the lines of one trace. Loki cannot run on the machines that test this collection: these
shapes are covered by contract tests, not by a live Loki.
"""

from __future__ import annotations

import json
import time

from ansible_collections.agentgateway.observability.plugins.module_utils.probe import _short, api_check, run_ready


def evaluate_lines(min_lines):
    def evaluate(document):
        if document.get("status") != "success":
            return False, "status %s: %s" % (document.get("status"), document.get("error")), "client_error", {}
        data = document.get("data") or {}
        streams = data.get("result") or []
        lines = [(s.get("stream") or {}, v) for s in streams for v in s.get("values") or []]
        details = {"streams": len(streams), "lines": len(lines),
                   "sample": [{"stream": st, "line": _short(v[1] if len(v) > 1 else "", 300)} for st, v in lines[:5]]}
        first = ""
        if lines:
            # The proxy's OTLP log records carry no body: Loki stores an empty line and the record's
            # fields as structured metadata, which the answer returns with the stream's labels.
            line, stream = lines[0][1][1] if len(lines[0][1]) > 1 else "", lines[0][0]
            first = ": " + (_short(line, 160) if line else
                            "(empty line) " + _short(json.dumps(stream, sort_keys=True), 160))
        shown = "%d line(s) in %d stream(s)%s" % (len(lines), len(streams), first)
        if len(lines) < min_lines:
            return False, "%s; at least %d expected" % (shown, min_lines), "logs_missing", details
        return True, shown, None, details
    return evaluate


def query_check(access, spec, deadline, backoff, tenant=None):
    now_ns = int(time.time() * 1e9)
    since = int(spec.get("since") or 3600)
    params = {"query": spec["query"], "start": now_ns - since * 1000000000, "end": now_ns + 60 * 1000000000,
              "limit": int(spec.get("limit") or 100), "direction": "backward"}
    headers = {"X-Scope-OrgID": tenant} if tenant else None
    return api_check(access, spec.get("id") or "loki.query", spec.get("title") or "LogQL %s finds lines" % spec["query"],
                     "loki", "/loki/api/v1/query_range", evaluate_lines(int(spec.get("min_lines", 1))), deadline,
                     backoff, params=params, headers=headers,
                     tried="LogQL %s over the last %ds at %s" % (spec["query"], since, access.describe()))


def ready_check(access, deadline, backoff):
    return run_ready(access, "loki.ready", "Loki is ready", "loki", "/ready", deadline, backoff)
