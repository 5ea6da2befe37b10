#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: prometheus_query
short_description: Check Prometheus - instant queries with expectations, target health by job, rule health, firing alerts
version_added: 0.1.0
description:
  - Runs instant queries (C(GET /api/v1/query)) and checks their result against expectations (at least one series,
    a value range, one series per label value such as one per model).
  - Checks that a scrape job has active targets that are up, each scraped by that job only (a target scraped by two
    jobs counts every series twice).
  - Checks that every rule group is loaded and every rule evaluates (C(health=ok)), and lists firing alerts.
  - Each check polls until it passes or O(deadline) ends, so data still on its way (the next scrape, the next rule
    evaluation) is waited for. Every result says what was tried, what was seen, the cause and the fix.
  - Read-only; safe in check mode.
author:
  - agentgateway.observability contributors (!UNKNOWN)
extends_documentation_fragment:
  - agentgateway.observability.access
  - agentgateway.observability.access.service
options:
  ready:
    description: Check C(/-/ready) first.
    type: bool
    default: true
  queries:
    description: Instant queries and what their result must hold.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Check id in the results; default C(prometheus.query.<n>).
        type: str
      title:
        description: One line for humans; default the query.
        type: str
      query:
        description: The PromQL expression.
        type: str
        required: true
      min_series:
        description: At least this many series must fit the value bounds.
        type: int
        default: 1
      min_value:
        description: Lowest accepted value (inclusive).
        type: float
      above:
        description: Values must be greater than this.
        type: float
      max_value:
        description: Highest accepted value (inclusive).
        type: float
      per_label:
        description:
          - For each of O(queries[].per_label.values) a series whose label O(queries[].per_label.label) has that value
            and fits the value bounds must exist, for example one per model sent.
        type: dict
        suboptions:
          label:
            description: The label name.
            type: str
            required: true
          values:
            description: The values that must each appear.
            type: list
            elements: str
            required: true
      cause:
        description: Cause reported when the result misses the expectations (default C(no_data) for an empty result).
        type: str
      fix:
        description: Fix text for the report when the expectations are missed.
        type: str
  targets:
    description: Scrape jobs whose targets must be up.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Check id; default C(prometheus.targets.<job>).
        type: str
      title:
        description: One line for humans.
        type: str
      job:
        description: The job name (scrape pool).
        type: str
        required: true
      min_up:
        description: At least this many targets must be up.
        type: int
        default: 1
      unique:
        description: Fail when another job scrapes the same address (every series would be counted twice).
        type: bool
        default: true
  rules:
    description: Check that every rule group loads and every rule evaluates with C(health=ok).
    type: bool
    default: false
  rule_groups:
    description: Rule groups that must be loaded (with O(rules)).
    type: list
    elements: str
    default: []
  alerts:
    description: List firing alerts (a check that passes unless an alert of O(fail_on_firing) fires).
    type: bool
    default: false
  fail_on_firing:
    description: Alert names that fail the alerts check when they fire.
    type: list
    elements: str
    default: []
notes:
  - Checked against a real Prometheus 3.14 in the collection's tests.
seealso:
  - name: Prometheus HTTP API
    description: The endpoints this module reads.
    link: https://prometheus.io/docs/prometheus/latest/querying/api/
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: The gateway target is up, requests and tokens are counted for each model
  agentgateway.observability.prometheus_query:
    access: nodeport
    service: {host_port: 30090}
    deadline: 90
    targets:
      - job: agentgateway
    queries:
      - id: prometheus.requests
        query: sum by (model) (agentgateway_requests_total)
        above: 0
        per_label: {label: model, values: [gpt-4, gpt-3.5-turbo]}
      - id: prometheus.tokens
        query: sum by (gen_ai_request_model) (agentgateway_gen_ai_client_token_usage_sum)
        per_label: {label: gen_ai_request_model, values: [gpt-4, gpt-3.5-turbo]}
    rules: true
    alerts: true

- name: Through the API server's service proxy, collecting results for a report
  agentgateway.observability.prometheus_query:
    access: proxy
    service: {namespace: monitoring, name: prometheus-server, port: "80"}
    queries:
      - query: up{job="agentgateway"}
        min_value: 1
    fail_on_error: false
  register: prom
"""

RETURN = r"""
checks:
  description: One result per check (ready, each target job, each query, rules, alerts); see M(agentgateway.observability.service_probe).
  returned: always
  type: list
  elements: dict
series:
  description: Series of each query by check id (at most 50 each).
  returned: always
  type: dict
  sample: {"prometheus.requests": [{"metric": {"model": "gpt-4"}, "value": [1767225600.0, "12"]}]}
firing_alerts:
  description: Alerts firing when the alerts check ran.
  returned: when O(alerts=true)
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
from ansible_collections.agentgateway.observability.plugins.module_utils import prometheus_api
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    access_argument_spec,
    service_suboptions,
)


def argument_spec():
    spec = access_argument_spec()
    spec.update(
        service=dict(type="dict", required=True, options=service_suboptions()),
        ready=dict(type="bool", default=True),
        queries=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="str"),
            title=dict(type="str"),
            query=dict(type="str", required=True),
            min_series=dict(type="int", default=1),
            min_value=dict(type="float"),
            above=dict(type="float"),
            max_value=dict(type="float"),
            per_label=dict(type="dict", options=dict(
                label=dict(type="str", required=True),
                values=dict(type="list", elements="str", required=True),
            )),
            cause=dict(type="str"),
            fix=dict(type="str"),
        )),
        targets=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="str"),
            title=dict(type="str"),
            job=dict(type="str", required=True),
            min_up=dict(type="int", default=1),
            unique=dict(type="bool", default=True),
        )),
        rules=dict(type="bool", default=False),
        rule_groups=dict(type="list", elements="str", default=[]),
        alerts=dict(type="bool", default=False),
        fail_on_firing=dict(type="list", elements="str", default=[]),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params

    def collect(services, deadline, backoff, results, out):
        access = services.open(params["service"], "prometheus")
        if params["ready"]:
            results.append(prometheus_api.ready_check(access, deadline, backoff))
        for target in params["targets"]:
            results.append(prometheus_api.targets_check(access, target, deadline, backoff))
        for index, query in enumerate(params["queries"]):
            query = dict(query, id=query.get("id") or "prometheus.query.%d" % index)
            check = prometheus_api.query_check(access, query, deadline, backoff)
            out["series"][query["id"]] = (check.get("details") or {}).get("series", [])
            results.append(check)
        if params["rules"]:
            results.append(prometheus_api.rules_check(access, params["rule_groups"], deadline, backoff))
        if params["alerts"]:
            check = prometheus_api.alerts_check(access, params["fail_on_firing"], deadline, backoff)
            out["firing_alerts"] = (check.get("details") or {}).get("firing", [])
            results.append(check)

    agw_checks.run_checks_module(module, "prometheus", "Prometheus", collect, {"series": {}})


if __name__ == "__main__":
    main()
