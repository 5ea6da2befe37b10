# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Services the site runs, as the verification and diagnose reach them (pure).

Each role's part of the site's plan (``_<role>_plan`` in its vars/main.yml) names, under
``services``, the Services it runs, by the verification's service keys (``SERVICE_KEYS``)::

    {namespace, name, port[, scheme][, node_port_setting]}   a Service the site runs
    {absent: "<why>"}                                         a hop the site does not run, and why

``node_port_setting`` is the setting of the NodePort the same part claims in its ``node_ports``.
agw_obs's tasks/add_part.yml moves ``services`` out of the part into the fact ``_agw_obs_services``
(``{key: entry}``, each with its ``role``); the deploy path never sees them.

- ``release_service``: the Service a chart release of the plan creates, by the chart's own naming rule;
- ``service_url``: ``{namespace, name, port, scheme}`` of an in-cluster Service URL (the existing
  stack's URLs);
- ``resolve``: how the controller reaches each service for ``agw_obs_access``, from those entries,
  the kind port plan's mappings and the user's overrides, or why a hop is skipped. This is the one
  place the verification's URLs are computed: its checks (roles/verification/tasks/verify.yml) and
  the screen a site run ends with (``verification.summary``) both use it;
- ``skipped_checks``: one skipped check per hop the site does not run, with its reason, for the report.

Chart naming, read from the pinned charts' templates (prometheus-community/helm-charts @ cf408a290aec,
prometheus 29.27.0; grafana-community/helm-charts @ 3386a1156177, grafana 12.11.1, tempo 2.2.4,
loki 18.11.0): every chart's fullname is ``fullnameOverride``, else the release name when it contains
``nameOverride`` (default: the chart's name), else ``<release>-<name>``, cut to 63 characters and
one trailing ``-`` removed (``trunc 63 | trimSuffix "-"``). Prometheus's server Service is
``server.fullnameOverride``, else ``<release>-<server.name>`` or ``<release>-<name>-<server.name>``
by the same rule (``server.name`` default ``server``); its port ``server.service.servicePort``.
Grafana's Service is the fullname on ``service.port`` (default 80); Tempo's the fullname on 3200
(templates/_ports.tpl, fixed); Loki's monolithic Service the fullname on
``loki.server.http_listen_port`` (default 3100).
"""

from __future__ import annotations

from urllib.parse import urlsplit

SERVICE_KEYS = ("gateway", "gateway_metrics", "mock_backend", "prometheus", "tempo", "loki", "grafana")
ACCESS_MODES = ("nodeport", "proxy", "url")
_TARGET_KEYS = ("namespace", "name", "port", "scheme")


class ServicesError(ValueError):
    """Input the services cannot be worked out from; the message names it."""


def _get(values, path, default=None):
    node = values
    for key in path.split("."):
        if not isinstance(node, dict) or node.get(key) in (None, ""):
            return default
        node = node[key]
    return node


def _trunc(name):
    name = name[:63]
    return name[:-1] if name.endswith("-") else name


def chart_fullname(release, chart, values):
    """The chart's fullname helper (see the module docstring)."""
    override = _get(values, "fullnameOverride")
    if override:
        return _trunc(str(override))
    name = str(_get(values, "nameOverride", chart))
    return _trunc(release if name in release else "%s-%s" % (release, name))


def _prometheus_server(release, chart, values):
    override = _get(values, "server.fullnameOverride")
    if override:
        return _trunc(str(override))
    name = str(_get(values, "nameOverride", chart))
    server = str(_get(values, "server.name", "server"))
    return _trunc("%s-%s" % (release, server) if name in release else "%s-%s-%s" % (release, name, server))


# chart name -> (the Service's name, its HTTP port)
CHART_SERVICES = {
    "prometheus": (_prometheus_server, lambda values: _get(values, "server.service.servicePort", 80)),
    "grafana": (chart_fullname, lambda values: _get(values, "service.port", 80)),
    "tempo": (chart_fullname, lambda values: 3200),
    "loki": (chart_fullname, lambda values: _get(values, "loki.server.http_listen_port", 3100)),
}


def release_service(release):
    """``{namespace, name, port}`` of the HTTP Service a release of the plan creates."""
    if not isinstance(release, dict) or not release.get("release") or not isinstance(release.get("chart"), dict):
        raise ServicesError("a release of the plan ({release, namespace, chart, values}) is needed, got %r"
                            % (release,))
    chart = release["chart"].get("name")
    if chart not in CHART_SERVICES:
        raise ServicesError("chart %r: its Service name is not known here (known: %s)"
                            % (chart, ", ".join(sorted(CHART_SERVICES))))
    values = release.get("values") or {}
    name_of, port_of = CHART_SERVICES[chart]
    return {"namespace": release.get("namespace", ""), "name": name_of(release["release"], chart, values),
            "port": int(port_of(values))}


def service_url(url):
    """``{namespace, name, port, scheme}`` of ``http(s)://<service>.<namespace>.svc[.<domain>][:port]``, or None."""
    try:
        parts = urlsplit(str(url or ""))
        port = parts.port
    except ValueError:
        return None
    labels = (parts.hostname or "").split(".")
    if parts.scheme not in ("http", "https") or len(labels) < 3 or labels[2] != "svc" or not all(labels[:2]):
        return None
    return {"namespace": labels[1], "name": labels[0], "port": port or (443 if parts.scheme == "https" else 80),
            "scheme": parts.scheme}


def _int(value, what):
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ServicesError("%s must be a number, got %r" % (what, value))


def resolve(services, required, access="nodeport", node_address="localhost", service_urls=None, port_mappings=None,
            overrides=None, off=None):
    """How each required service is reached, or why its hop is skipped.

    ``services`` is the site plan's ``_agw_obs_services``; ``required`` the service keys the
    verification uses; ``port_mappings`` the kind port plan's mappings (``{setting, node_port,
    host_port}``); ``overrides`` ``verification_services`` (per key ``namespace``, ``name``, ``port``,
    ``scheme``, ``host_port``; a ``host_port`` given wins over the port plan, 0 means the API server
    proxy); ``off`` the hops the verification's own settings turn off (``{key: reason}``). Returns
    ``{"targets": {key: service}, "node_ports": {key: NodePort}, "skipped": {key: reason}}``; each
    target is the ``service`` option of the verification modules.
    """
    if access not in ACCESS_MODES:
        raise ServicesError("agw_obs_access must be one of %s, got %r" % (", ".join(ACCESS_MODES), access))
    services, overrides, urls = dict(services or {}), dict(overrides or {}), dict(service_urls or {})
    host_ports = {m["setting"]: m for m in port_mappings or [] if isinstance(m, dict) and m.get("setting")}
    out = {"targets": {}, "node_ports": {}, "skipped": {}}
    for key in required:
        if key in (off or {}):
            out["skipped"][key] = off[key]
            continue
        planned = services.get(key)
        override = overrides.get(key) or {}
        if not isinstance(override, dict):
            raise ServicesError("verification_services.%s must be a mapping, got %r" % (key, override))
        absent = (planned or {}).get("absent") if not override.get("name") else None
        if access == "url":
            if urls.get(key):
                out["targets"][key] = {"access": "url", "url": urls[key]}
            else:
                out["skipped"][key] = "%sno URL given (agw_obs_service_urls.%s is empty)" % (
                    absent + "; " if absent else "", key)
            continue
        if absent:
            out["skipped"][key] = absent
            continue
        entry = {k: v for k, v in dict(planned or {}, **override).items() if k in _TARGET_KEYS + ("host_port",)}
        if not entry.get("name"):
            out["skipped"][key] = (
                "no role planned in this run runs a Service for %s (its role was not planned: --tags?), and "
                "verification_services.%s names none" % (key, key))
            continue
        proxy = {"access": "proxy", "namespace": entry.get("namespace", ""), "name": entry["name"],
                 "port": str(entry.get("port", "")), "scheme": entry.get("scheme") or "http"}
        host_port, node_port = 0, None
        if "host_port" in override:
            host_port = _int(override["host_port"], "verification_services.%s.host_port" % key)
        elif (planned or {}).get("node_port_setting") in host_ports:
            mapping = host_ports[planned["node_port_setting"]]
            host_port, node_port = int(mapping["host_port"]), int(mapping["node_port"])
        if access == "nodeport" and host_port > 0:
            out["targets"][key] = {"access": "nodeport", "host_port": host_port, "node_address": node_address,
                                   "scheme": proxy["scheme"]}
            if node_port is not None:
                out["node_ports"][key] = node_port
        else:
            out["targets"][key] = proxy
    return out


# What a skipped hop leaves out of the report, by service key.
HOP_TITLES = {
    "gateway": "Requests through the gateway",
    "gateway_metrics": "The gateway's /metrics",
    "mock_backend": "The backend's journal of the requests",
    "prometheus": "Prometheus: the gateway target, requests, tokens, cost, rules",
    "tempo": "Tempo: the traces of the requests",
    "loki": "Loki: the log lines of the requests",
    "grafana": "Grafana: health, datasources, dashboards, a panel",
}


def skipped_checks(skipped):
    """One skipped check per skipped hop (``{key: reason}``), with the reason, as the verification report takes them."""
    out = []
    for key in [k for k in SERVICE_KEYS if k in skipped] + sorted(k for k in skipped if k not in SERVICE_KEYS):
        reason = skipped[key]
        out.append({
            "id": "%s.skipped" % key, "title": "%s (not run by this site)" % HOP_TITLES.get(key, key),
            "service": key, "status": "skipped", "tried": "nothing", "saw": "skipped: %s" % reason,
            "cause": "not_run", "explanation": "The site does not run %s: %s." % (key, reason),
            "fix": "Nothing to fix when the site has no %s. To verify it, give it (see the reason)." % key,
            "attempts": 0, "elapsed_s": 0.0,
        })
    return out
