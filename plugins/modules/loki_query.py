#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: loki_query
short_description: Check Loki - readiness and LogQL queries that must find log lines, for example by trace id
version_added: 0.1.0
description:
  - Runs LogQL log queries over a recent time range (C(GET /loki/api/v1/query_range)) that must return lines.
  - The gateway's access logs, shipped over OTLP, keep the trace id as structured metadata C(trace_id), so
    C({service_name=~".+"} | trace_id="<id>") finds the log line of one request.
  - Each query polls until it passes or O(deadline) ends. No line fails with cause C(logs_missing) and the fix.
  - Read-only; safe in check mode.
author:
  - agentgateway.observability contributors (!UNKNOWN)
extends_documentation_fragment:
  - agentgateway.observability.access
  - agentgateway.observability.access.service
options:
  ready:
    description: Check C(/ready) first.
    type: bool
    default: true
  queries:
    description: LogQL log queries that must find lines.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: Check id; default C(loki.query.<n>).
        type: str
      title:
        description: One line for humans.
        type: str
      query:
        description: The LogQL query.
        type: str
        required: true
      min_lines:
        description: At least this many lines must come back.
        type: int
        default: 1
      since:
        description: Look back this many seconds.
        type: int
        default: 3600
      limit:
        description: Most lines to fetch.
        type: int
        default: 100
  tenant:
    description: Sent as C(X-Scope-OrgID), for a Loki with multi-tenancy on.
    type: str
notes:
  - Loki cannot run on the machines that test this collection. The module is tested against a local server that
    implements these endpoints as Loki's API reference documents them (contract tests), not against Loki.
seealso:
  - name: Loki HTTP API
    description: The endpoints this module reads.
    link: https://grafana.com/docs/loki/latest/reference/loki-http-api/
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: The access log line of one request, by its trace id
  agentgateway.observability.loki_query:
    access: proxy
    service: {namespace: monitoring, name: loki, port: "3100"}
    deadline: 60
    queries:
      - id: loki.trace
        query: '{service_name=~".+"} | trace_id="4bf92f3577b34da6a3ce929d0e0e4736"'
"""

RETURN = r"""
checks:
  description: One result per check; see M(agentgateway.observability.service_probe).
  returned: always
  type: list
  elements: dict
lines:
  description: By check id, how many lines came back and the first few.
  returned: always
  type: dict
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
from ansible_collections.agentgateway.observability.plugins.module_utils import loki_api
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
            min_lines=dict(type="int", default=1),
            since=dict(type="int", default=3600),
            limit=dict(type="int", default=100),
        )),
        tenant=dict(type="str"),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params

    def collect(services, deadline, backoff, results, out):
        access = services.open(params["service"], "loki")
        if params["ready"]:
            results.append(loki_api.ready_check(access, deadline, backoff))
        for index, query in enumerate(params["queries"]):
            query = dict(query, id=query.get("id") or "loki.query.%d" % index)
            check = loki_api.query_check(access, query, deadline, backoff, params["tenant"])
            out["lines"][query["id"]] = check.get("details") or {}
            results.append(check)

    agw_checks.run_checks_module(module, "loki", "Loki", collect, {"lines": {}})


if __name__ == "__main__":
    main()
