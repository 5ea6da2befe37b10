# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Checks against the Prometheus HTTP API (prometheus_query).

API: https://prometheus.io/docs/prometheus/latest/querying/api/ (instant queries
``GET /api/v1/query``, ``GET /api/v1/targets``, ``GET /api/v1/rules``, ``GET /api/v1/alerts``);
tested against a real Prometheus 3.14.
"""

from __future__ import annotations

import urllib.parse

from ansible_collections.agentgateway.observability.plugins.module_utils.probe import api_check, run_ready


def _value(series):
    try:
        return float(series["value"][1])
    except (KeyError, IndexError, TypeError, ValueError):
        return None


def _fmt(series):
    labels = ",".join("%s=%s" % kv for kv in sorted(series.get("metric", {}).items()) if kv[0] != "__name__")
    return "{%s} %s" % (labels, series.get("value", [None, "?"])[1])


def evaluate_query(spec):
    """An evaluate() for one instant query expectation (see the module's ``queries`` option)."""
    def evaluate(document):
        if document.get("status") != "success":
            return False, "status %s: %s" % (document.get("status"), document.get("error")), "client_error", {}
        data = document.get("data") or {}
        result = data.get("result") or []
        if data.get("resultType") == "scalar":
            result = [{"metric": {}, "value": result}]
        details = {"series": result[:50]}
        minimum, above, maximum = spec.get("min_value"), spec.get("above"), spec.get("max_value")

        def fits(series):
            value = _value(series)
            if value is None:
                return False
            return ((minimum is None or value >= minimum) and (above is None or value > above)
                    and (maximum is None or value <= maximum))

        shown = "%d series: %s" % (len(result), "; ".join(_fmt(s) for s in result[:6])
                                   + (" ..." if len(result) > 6 else ""))
        if not result:
            return False, "no series", spec.get("cause") or "no_data", details
        per_label = spec.get("per_label") or {}
        if per_label:
            label, wanted = per_label["label"], [str(v) for v in per_label.get("values") or []]
            missing = [v for v in wanted if not any(s.get("metric", {}).get(label) == v and fits(s) for s in result)]
            if missing:
                return (False, "%s; no fitting series for %s=%s" % (shown, label, ", ".join(missing)),
                        spec.get("cause") or "no_data", details)
            return True, shown, None, details
        fitting = [s for s in result if fits(s)]
        if len(fitting) < int(spec.get("min_series") or 1):
            bounds = [x for x in ("value >= %s" % minimum if minimum is not None else "",
                                  "value > %s" % above if above is not None else "",
                                  "value <= %s" % maximum if maximum is not None else "") if x]
            wanted = int(spec.get("min_series") or 1)
            saw = "%s; %d fit (%s), %d expected" % (shown, len(fitting), " and ".join(bounds) or "any", wanted)
            return False, saw, spec.get("cause") or "expectation", details
        return True, shown, None, details
    return evaluate


def query_check(access, spec, deadline, backoff):
    return api_check(access, spec.get("id") or "prometheus.query", spec.get("title") or spec["query"], "prometheus",
                     "/api/v1/query", evaluate_query(spec), deadline, backoff, params={"query": spec["query"]},
                     tried="instant query %s at %s" % (spec["query"], access.describe()), fix=spec.get("fix"))


def _address(target):
    url = target.get("scrapeUrl") or ""
    return urllib.parse.urlsplit(url).netloc or target.get("labels", {}).get("instance", "")


def evaluate_targets(spec):
    job = spec["job"]
    min_up = int(spec.get("min_up", 1))

    def evaluate(document):
        active = (document.get("data") or {}).get("activeTargets") or []
        mine = [t for t in active if t.get("scrapePool") == job or t.get("labels", {}).get("job") == job]
        details = {"targets": [{"scrapeUrl": t.get("scrapeUrl"), "health": t.get("health"),
                                "lastError": t.get("lastError"), "labels": t.get("labels")} for t in mine]}
        if not mine:
            pools = sorted({t.get("scrapePool") for t in active})
            return False, "no active target in job %s (jobs: %s)" % (job, ", ".join(pools) or "none"), \
                "target_missing", details
        up = [t for t in mine if t.get("health") == "up"]
        shown = "; ".join("%s %s%s" % (t.get("scrapeUrl"), t.get("health"),
                                       (" (%s)" % t["lastError"]) if t.get("lastError") else "") for t in mine)
        if spec.get("unique", True):
            addresses = {_address(t) for t in mine}
            twins = [t for t in active if t not in mine and _address(t) in addresses]
            if twins:
                details["duplicates"] = [{"scrapePool": t.get("scrapePool"), "scrapeUrl": t.get("scrapeUrl")}
                                         for t in twins]
                return False, "%s; also scraped by job(s) %s" % (
                    shown, ", ".join(sorted({t.get("scrapePool") for t in twins}))), "target_duplicate", details
        down = [t for t in mine if t.get("health") == "down"]
        if down:
            return False, shown, "target_down", details
        if len(up) < min_up:
            return False, "%s; %d up, %d expected (not scraped yet?)" % (shown, len(up), min_up), "expectation", details
        return True, "%d target(s) up: %s" % (len(up), shown), None, details
    return evaluate


def targets_check(access, spec, deadline, backoff):
    return api_check(access, spec.get("id") or "prometheus.targets.%s" % spec["job"],
                     spec.get("title") or "Prometheus scrapes job %s, each target once, up" % spec["job"],
                     "prometheus", "/api/v1/targets", evaluate_targets(spec), deadline, backoff,
                     params={"state": "active"})


def evaluate_rules(expected_groups):
    def evaluate(document):
        groups = (document.get("data") or {}).get("groups") or []
        details = {"groups": [{"name": g.get("name"), "rules": len(g.get("rules") or []),
                               "unhealthy": [r.get("name") for r in g.get("rules") or [] if r.get("health") != "ok"]}
                              for g in groups]}
        names = {g.get("name") for g in groups}
        missing = [g for g in expected_groups or [] if g not in names]
        if missing:
            return False, "rule groups missing: %s (present: %s)" % (", ".join(missing), ", ".join(sorted(names))), \
                "rule_unhealthy", details
        if not groups:
            return False, "no rule groups loaded", "no_data", details
        bad = [(g.get("name"), r) for g in groups for r in g.get("rules") or [] if r.get("health") == "err"]
        if bad:
            return False, "; ".join("%s/%s: %s" % (g, r.get("name"), r.get("lastError")) for g, r in bad[:5]), \
                "rule_unhealthy", details
        pending = [(g.get("name"), r.get("name")) for g in groups for r in g.get("rules") or []
                   if r.get("health") != "ok"]
        if pending:
            return False, "%d rule(s) not evaluated yet (health unknown): %s" % (
                len(pending), ", ".join("%s/%s" % p for p in pending[:5])), "expectation", details
        total = sum(len(g.get("rules") or []) for g in groups)
        return True, "%d group(s), %d rule(s), all healthy" % (len(groups), total), None, details
    return evaluate


def rules_check(access, expected_groups, deadline, backoff):
    return api_check(access, "prometheus.rules", "Every rule group loads and evaluates", "prometheus",
                     "/api/v1/rules", evaluate_rules(expected_groups), deadline, backoff)


def evaluate_alerts(fail_on):
    def evaluate(document):
        alerts = (document.get("data") or {}).get("alerts") or []
        firing = [a for a in alerts if a.get("state") == "firing"]
        names = sorted({a.get("labels", {}).get("alertname", "?") for a in firing})
        details = {"firing": [{"alertname": a.get("labels", {}).get("alertname"), "labels": a.get("labels"),
                               "activeAt": a.get("activeAt")} for a in firing]}
        bad = [n for n in names if n in (fail_on or [])]
        shown = "firing: %s" % (", ".join(names) if names else "none")
        if bad:
            return False, shown, "expectation", details
        return True, shown, None, details
    return evaluate


def alerts_check(access, fail_on, deadline, backoff):
    return api_check(access, "prometheus.alerts", "Firing alerts" + (" (none of %s)" % ", ".join(fail_on)
                                                                     if fail_on else ""),
                     "prometheus", "/api/v1/alerts", evaluate_alerts(fail_on), deadline, backoff)


def ready_check(access, deadline, backoff):
    return run_ready(access, "prometheus.ready", "Prometheus is ready", "prometheus", "/-/ready", deadline, backoff)
