# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks against the Grafana HTTP API (grafana_info).

Endpoints, as Grafana's HTTP API reference describes them
(https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/):

* ``GET /api/health`` -> ``{"database": "ok", "version": ...}`` (other.md, "Health API"), no auth;
* ``GET /api/datasources`` -> ``[{uid, name, type, url, ...}]`` (data_source.md);
* ``GET /api/datasources/uid/:uid/health`` -> 200 ``{"status": "OK", "message": ...}``; a failed
  health check answers 400 with ``status`` ``ERROR`` (data_source.md, and the route's swagger
  annotations in pkg/api/datasources.go);
* ``GET /api/dashboards/uid/:uid`` -> ``{"dashboard": {...}, "meta": {...}}``, 404 when missing
  (dashboard.md);
* ``POST /api/ds/query`` with ``{"queries": [{refId, datasource: {uid}, expr, ...}], "from", "to"}``
  -> ``{"results": {refId: {"frames": [{schema, data: {values: [[...], ...]}}], "error"?}}}``
  (data_source.md, "Query a data source").

Grafana and its API cannot run on the machines that test this collection: these shapes are
covered by contract tests (tests/functional/test_contract_grafana.py), never by a live Grafana.

Through the Kubernetes API server's service proxy the ``Authorization`` header does not reach
Grafana (the API server removes it), so in ``session`` mode the module logs in with
``POST /login`` ``{"user", "password"}`` (pkg/api/login.go ``LoginPost``; not part of the
documented API) and sends the session cookie instead. Cookies pass the API server proxy
unchanged (k8s.io/apimachinery util/proxy has no cookie handling). Grafana's CSRF check skips
requests without an ``Origin`` header (pkg/middleware/csrf), and this client sends none.
"""

from __future__ import annotations

import re

from ansible_collections.agentgateway.observability.plugins.module_utils import checks as agw_checks
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    Outcome,
    classify_error,
    classify_response,
    poll,
)
from ansible_collections.agentgateway.observability.plugins.module_utils.http_client import HttpError
from ansible_collections.agentgateway.observability.plugins.module_utils.probe import api_check, _short

BUILTIN_VARIABLES = {
    "__rate_interval": "1m",
    "__interval": "15s",
    "__interval_ms": "15000",
    "__range": "1h",
    "__range_s": "3600",
    "__range_ms": "3600000",
}


class Session(object):
    """How requests to Grafana authenticate: basic/bearer (set on the client) or a session cookie."""

    def __init__(self, access, username=None, password=None, mode="auto"):
        self.access = access
        self.username = username
        self.password = password
        if mode == "auto":
            mode = "session" if access.via_proxy and username else ("basic" if username else "none")
        self.mode = mode
        self.cookie = None

    def headers(self):
        return {"Cookie": self.cookie} if self.cookie else None

    def login_check(self, deadline, backoff):
        """POST /login for a session cookie (mode session); a check result."""
        tried = "POST %s as %s (session login)" % (self.access.url("/login"), self.username)
        if not self.username or self.password in (None, ""):
            return agw_checks.result("grafana.login", "Log in to Grafana", "grafana", False, tried,
                                     "no user or password given", cause="credentials_missing", access=self.access)

        def attempt():
            try:
                response = self.access.request("POST", "/login", deadline=deadline,
                                               json_body={"user": self.username, "password": self.password})
            except HttpError as exc:
                cause, saw = classify_error(exc)
                return Outcome(False, cause, saw)
            if not 200 <= response.status < 300:
                cause, saw = classify_response(response, self.access.via_proxy)
                return Outcome(False, cause, saw, status=response.status)
            cookies = []
            for name, value in response.header_items:
                if name.lower() == "set-cookie":
                    cookies.append(value.split(";", 1)[0].strip())
            if not cookies:
                return Outcome(False, "invalid_response", "HTTP %d without a session cookie" % response.status)
            self.cookie = "; ".join(cookies)
            return Outcome(True, saw="logged in (%d cookie(s))" % len(cookies))

        outcome = poll(deadline, attempt, backoff=backoff)
        return agw_checks.result("grafana.login", "Log in to Grafana", "grafana", outcome.ok, tried, outcome.saw,
                                 cause=outcome.cause, access=self.access, attempts=outcome.attempts,
                                 elapsed=deadline.elapsed())


def health_check(access, deadline, backoff):
    def evaluate(doc):
        database = doc.get("database")
        shown = "database %s, version %s" % (database, doc.get("version"))
        if database != "ok":
            return False, shown, "server_error", doc
        return True, shown, None, doc
    return api_check(access, "grafana.health", "Grafana is healthy", "grafana", "/api/health", evaluate, deadline,
                     backoff)


def datasources_check(access, session, expected, deadline, backoff):
    """Every expected uid is present; returns (check, list of datasources seen)."""
    seen = {"list": []}

    def evaluate(doc):
        if not isinstance(doc, list):
            return False, "not a list of datasources: %s" % _short(doc), "invalid_response", {}
        seen["list"] = doc
        uids = [d.get("uid") for d in doc]
        missing = [u for u in expected if u not in uids]
        names = ", ".join("%s (%s)" % (d.get("uid"), d.get("type")) for d in doc)
        shown = "%d datasource(s): %s" % (len(doc), names)
        details = {"datasources": [{"uid": d.get("uid"), "name": d.get("name"), "type": d.get("type"),
                                    "url": d.get("url")} for d in doc]}
        if missing:
            return False, "%s; missing uid(s): %s" % (shown, ", ".join(missing)), "datasource_missing", details
        return True, shown, None, details

    check = api_check(access, "grafana.datasources", "Grafana has the datasources %s" % ", ".join(expected)
                      if expected else "Grafana lists its datasources", "grafana", "/api/datasources", evaluate,
                      deadline, backoff, headers=session.headers())
    return check, seen["list"]


def datasource_health_check(access, session, datasource, deadline, backoff):
    uid = datasource["uid"]

    def evaluate(doc):
        status = str(doc.get("status", "")).upper()
        shown = "status %s: %s" % (doc.get("status"), _short(doc.get("message", ""), 200))
        if status != "OK":
            return False, shown, "datasource_unhealthy", doc
        return True, shown, None, doc

    return api_check(access, "grafana.datasource.%s" % uid,
                     "Datasource %s (%s) is healthy" % (uid, datasource.get("type", "?")), "grafana",
                     "/api/datasources/uid/%s/health" % uid, evaluate, deadline, backoff, headers=session.headers(),
                     body_statuses=(400,))


def dashboard_check(access, session, uid, deadline, backoff, keep=None):
    def evaluate(doc):
        dashboard = doc.get("dashboard") or {}
        if keep is not None:
            keep[uid] = dashboard
        panels = list(iter_panels(dashboard.get("panels") or []))
        return True, "%r, %d panel(s)" % (dashboard.get("title"), len(panels)), None, {
            "title": dashboard.get("title"), "panels": len(panels), "folder": (doc.get("meta") or {}).get("folderTitle")}
    return api_check(access, "grafana.dashboard.%s" % uid, "Dashboard %s is present" % uid, "grafana",
                     "/api/dashboards/uid/%s" % uid, evaluate, deadline, backoff, headers=session.headers(),
                     status_causes={404: "dashboard_missing"})


def iter_panels(panels):
    """Every panel, rows' nested panels included."""
    for panel in panels:
        yield panel
        yield from panel.get("panels") or []


_VAR = re.compile(r"\$\{([A-Za-z0-9_]+)(?::[A-Za-z]+)?\}|\$([A-Za-z0-9_]+)|\[\[([A-Za-z0-9_]+)(?::[A-Za-z]+)?\]\]")


def interpolate(expr, variables=None):
    """Grafana's template variables replaced: given values, built-ins, ``.*`` for the rest (the "All" value)."""
    values = dict(BUILTIN_VARIABLES)
    values.update({k: str(v) for k, v in (variables or {}).items()})

    def repl(match):
        name = match.group(1) or match.group(2) or match.group(3)
        return values.get(name, ".*")
    return _VAR.sub(repl, expr)


def panel_queries(dashboard, panel_id=None, panel_title=None, variables=None):
    """(panel, [query dicts for /api/ds/query]) of the chosen panel, or (None, reason)."""
    chosen = None
    for panel in iter_panels(dashboard.get("panels") or []):
        if (panel_id is not None and panel.get("id") == panel_id) or \
                (panel_title is not None and panel.get("title") == panel_title):
            chosen = panel
            break
    if chosen is None:
        return None, "no panel with %s" % ("id %s" % panel_id if panel_id is not None else "title %r" % panel_title)
    # Constant variables keep their value, as in Grafana (the grafana role writes the gateway's scrape
    # job into the dashboards' hidden "job" constant); the caller's values win.
    constants = dict((v["name"], v.get("query", "")) for v in (dashboard.get("templating") or {}).get("list") or []
                     if isinstance(v, dict) and v.get("type") == "constant" and v.get("name"))
    variables = dict(constants, **(variables or {}))
    queries = []
    for target in chosen.get("targets") or []:
        if target.get("hide") or not target.get("expr"):
            continue
        datasource = target.get("datasource") or chosen.get("datasource")
        if isinstance(datasource, str):
            datasource = {"uid": datasource}
        query = {"refId": target.get("refId") or "A", "datasource": datasource,
                 "expr": interpolate(target["expr"], variables), "range": True, "instant": False,
                 "intervalMs": 15000, "maxDataPoints": 100}
        queries.append(query)
    if not queries:
        return None, "panel %r has no query with an expression" % chosen.get("title")
    return chosen, queries


def count_values(frames):
    """Non-null numbers in the value fields (all fields but the first time field) of data frames."""
    count = 0
    for frame in frames or []:
        fields = ((frame.get("schema") or {}).get("fields")) or []
        values = ((frame.get("data") or {}).get("values")) or []
        for index, column in enumerate(values):
            kind = fields[index].get("type") if index < len(fields) else None
            if kind == "time":
                continue
            count += sum(1 for v in column if isinstance(v, (int, float)) and not isinstance(v, bool))
    return count


def panel_check(access, session, dashboards, spec, deadline, backoff):
    """Run one panel's queries through ``POST /api/ds/query``; data must come back."""
    uid = spec["dashboard_uid"]
    label = spec.get("panel_title") if spec.get("panel_title") is not None else "id %s" % spec.get("panel_id")
    title = "Panel %s of dashboard %s returns data" % (label, uid)
    dashboard = dashboards.get(uid)
    if dashboard is None:
        keep = {}
        check = dashboard_check(access, session, uid, deadline, backoff, keep)
        if check["status"] != "passed":
            check = dict(check, id="grafana.panel", title=title)
            return check
        dashboard = keep[uid]
    panel, queries = panel_queries(dashboard, spec.get("panel_id"), spec.get("panel_title"), spec.get("variables"))
    if panel is None:
        return agw_checks.result("grafana.panel", title, "grafana", False, "find the panel in dashboard %s" % uid,
                                 queries, cause="config", access=access,
                                 fix="Set verification_grafana_panel to a panel of the dashboard.")
    body = {"queries": queries, "from": spec.get("from") or "now-15m", "to": spec.get("to") or "now"}
    minimum = int(spec.get("min_values") or 1)

    def evaluate(doc):
        results = doc.get("results") or {}
        total, errors = 0, []
        for query in queries:
            res = results.get(query["refId"]) or {}
            if res.get("error"):
                errors.append("%s: %s" % (query["refId"], res["error"]))
            total += count_values(res.get("frames"))
        details = {"values": total, "queries": [q["expr"] for q in queries]}
        if errors:
            return False, "; ".join(errors), "expectation", details
        if total < minimum:
            return False, "%d value(s) returned, at least %d expected" % (total, minimum), "no_data", details
        return True, "%d value(s) returned" % total, None, details

    tried = "POST %s with the %d query(ies) of panel %r (%s) from %s to %s" % (
        access.url("/api/ds/query"), len(queries), panel.get("title"), "; ".join(q["expr"] for q in queries),
        body["from"], body["to"])
    return api_check(access, "grafana.panel", title, "grafana", "/api/ds/query", evaluate, deadline, backoff,
                     method="POST", json_body=body, headers=session.headers(), tried=tried, body_statuses=(400,))
