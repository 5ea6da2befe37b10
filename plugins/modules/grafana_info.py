#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: grafana_info
short_description: Check Grafana - health, datasources and their health, dashboards by uid, one panel query
version_added: 0.1.0
description:
  - Checks C(GET /api/health), that the datasources of O(datasources) exist and that every datasource's health check
    (C(GET /api/datasources/uid/<uid>/health)) passes, that the dashboards of O(dashboards) exist, and that one panel's
    queries, run through Grafana's query API (C(POST /api/ds/query)), return data.
  - The panel's template variables are replaced by O(panel.variables), Grafana's built-ins (C($__rate_interval) by
    C(1m), ...) and C(.*) (the "All" value) for the rest, as the dashboard would send them.
  - Each check polls until it passes or O(deadline) ends. Every result says what was tried, what was seen, the
    cause (for example C(unauthorized) for wrong credentials, C(datasource_unhealthy), C(dashboard_missing),
    C(no_data)) and the fix.
  - Read-only; safe in check mode.
author:
  - agentgateway.observability contributors (!UNKNOWN)
extends_documentation_fragment:
  - agentgateway.observability.access
  - agentgateway.observability.access.service
options:
  fail_on_error:
    description:
      - Fail the task when a check fails. By default this module only reports, as an C(_info) module should; the
        results, with the cause and fix of each failure, are returned either way (RV(passed) says whether all passed).
      - Set true to stop a play on a failed check.
    type: bool
    default: false
  login:
    description:
      - How to authenticate. C(basic) sends O(username) and O(password) with every request, C(session) logs in once
        (C(POST /login)) and sends Grafana's session cookie, C(none) sends nothing (only the health check works then).
      - C(auto) is C(session) through the API server proxy (it removes the C(Authorization) header), else C(basic) when
        O(username) is set, else C(none). A O(bearer_token) (service account token) works with C(basic) or C(none).
    type: str
    choices: [auto, basic, session, none]
    default: auto
  health:
    description: Check C(/api/health) (no credentials needed).
    type: bool
    default: true
  datasources:
    description:
      - Datasource uids that must exist. Every datasource found is health-checked when O(datasource_health=true).
    type: list
    elements: str
    default: []
  datasource_health:
    description: Run the health check of every datasource Grafana lists.
    type: bool
    default: true
  dashboards:
    description: Dashboard uids that must exist.
    type: list
    elements: str
    default: []
  panel:
    description: A panel whose queries must return data. Omit to skip.
    type: dict
    suboptions:
      dashboard_uid:
        description: Uid of the dashboard.
        type: str
        required: true
      panel_id:
        description: Id of the panel (or give O(panel.panel_title)).
        type: int
      panel_title:
        description: Title of the panel.
        type: str
      variables:
        description: Values of the dashboard's template variables.
        type: dict
        default: {}
      from:
        description: Start of the time range (Grafana's syntax, for example C(now-15m)).
        type: str
        default: now-15m
      to:
        description: End of the time range.
        type: str
        default: now
      min_values:
        description: At least this many non-null values must come back.
        type: int
        default: 1
notes:
  - Grafana cannot run on the machines that test this collection. The module is tested against a local server that
    implements these endpoints as Grafana's HTTP API reference documents them (contract tests), not against Grafana.
  - C(session) login uses C(POST /login), which Grafana's web UI uses but its API reference does not document.
seealso:
  - name: Grafana HTTP API
    description: The endpoints this module reads.
    link: https://grafana.com/docs/grafana/latest/developer-resources/api-reference/http-api/
attributes:
  check_mode:
    support: full
    description: Reads only (the panel query is a read through Grafana's query API).
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: Grafana, its datasources and the collection's dashboards, on kind
  agentgateway.observability.grafana_info:
    access: nodeport
    service: {host_port: 30080}
    username: admin
    password: "{{ lookup('ansible.builtin.file', '~/.agentgateway-observability/default/grafana-admin-password') }}"
    datasources: [prometheus, tempo]
    dashboards: [agentgateway-genai-overview, agentgateway-cost]
    panel:
      dashboard_uid: agentgateway-genai-overview
      panel_title: Gateway pods up

- name: Through the API server proxy (session login)
  agentgateway.observability.grafana_info:
    access: proxy
    service: {namespace: monitoring, name: grafana, port: "80"}
    username: admin
    password: "{{ grafana_password }}"
    datasources: [prometheus]
  register: grafana
"""

RETURN = r"""
checks:
  description: One result per check; see M(agentgateway.observability.service_probe).
  returned: always
  type: list
  elements: dict
datasources:
  description: The datasources Grafana lists (uid, name, type, url).
  returned: always
  type: list
  elements: dict
summary:
  description: Counts of checks by status.
  returned: always
  type: dict
passed:
  description: True when no check failed.
  returned: always
  type: bool
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentgateway.observability.plugins.module_utils import checks as agw_checks
from ansible_collections.agentgateway.observability.plugins.module_utils import grafana_api
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    AccessError,
    access_argument_spec,
    service_suboptions,
)


def argument_spec():
    spec = access_argument_spec()
    # an _info module reports; it fails only when asked to (the other verification modules fail by default)
    spec["fail_on_error"] = dict(type="bool", default=False)
    spec.update(
        service=dict(type="dict", required=True, options=service_suboptions()),
        login=dict(type="str", choices=["auto", "basic", "session", "none"], default="auto"),
        health=dict(type="bool", default=True),
        datasources=dict(type="list", elements="str", default=[]),
        datasource_health=dict(type="bool", default=True),
        dashboards=dict(type="list", elements="str", default=[]),
        panel=dict(type="dict", options={
            "dashboard_uid": dict(type="str", required=True),
            "panel_id": dict(type="int"),
            "panel_title": dict(type="str"),
            "variables": dict(type="dict", default={}),
            "from": dict(type="str", default="now-15m"),
            "to": dict(type="str", default="now"),
            "min_values": dict(type="int", default=1),
        }),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    panel = params["panel"]
    if panel and (panel.get("panel_id") is None) == (panel.get("panel_title") is None):
        module.fail_json(msg="panel needs exactly one of panel_id and panel_title")

    def collect(services, deadline, backoff, results, out):
        listed = []
        session_mode = params["login"]
        username, password = params["username"], params["password"]
        overrides = {}
        probe = services.open(params["service"], "grafana", username="", password="", bearer_token="")
        if session_mode == "auto":
            session_mode = "session" if probe.via_proxy and username else ("basic" if username else "none")
        if probe.via_proxy and (session_mode == "basic" or params["bearer_token"]):
            raise AccessError("grafana: basic auth and bearer tokens cannot pass the API server proxy (it removes the "
                              "Authorization header); use login=session with username and password, or access url "
                              "or nodeport")
        if session_mode == "session" or probe.via_proxy:
            access = probe  # no Authorization header: it would not pass the API server proxy
        else:
            if session_mode == "none":
                overrides = dict(username="", password="")
            access = services.open(params["service"], "grafana", **overrides)
        session = grafana_api.Session(access, username, password, session_mode)
        if params["health"]:
            results.append(grafana_api.health_check(probe, deadline, backoff))
        authenticated = True
        if session.mode == "session" and password:
            login = session.login_check(deadline, backoff)
            results.append(login)
            authenticated = login["status"] == "passed"
        wants_auth = params["datasources"] or params["datasource_health"] or params["dashboards"] or panel
        if wants_auth and session.mode in ("basic", "session") and not password:
            results.append(agw_checks.result("grafana.api", "Grafana API checks", "grafana", False,
                                             "datasources, dashboards and the panel query as %s" % username,
                                             "no password given", cause="credentials_missing", access=access))
        elif wants_auth and authenticated:
            # (a failed login is reported once, by the grafana.login check)
            check, listed = grafana_api.datasources_check(access, session, params["datasources"], deadline, backoff)
            results.append(check)
            if params["datasource_health"] and check["status"] == "passed":
                for datasource in listed:
                    if datasource.get("uid"):
                        results.append(grafana_api.datasource_health_check(access, session, datasource, deadline,
                                                                           backoff))
            dashboards = {}
            for uid in params["dashboards"]:
                results.append(grafana_api.dashboard_check(access, session, uid, deadline, backoff, dashboards))
            if panel:
                results.append(grafana_api.panel_check(access, session, dashboards, panel, deadline, backoff))
        out["datasources"] = [{"uid": d.get("uid"), "name": d.get("name"), "type": d.get("type"),
                               "url": d.get("url")} for d in listed]

    agw_checks.run_checks_module(module, "grafana", "Grafana", collect, {"datasources": []})


if __name__ == "__main__":
    main()
