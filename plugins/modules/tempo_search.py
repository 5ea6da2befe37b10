#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: tempo_search
short_description: Check Tempo - readiness, traces by id with expected span attributes, TraceQL search
version_added: 0.1.0
description:
  - Fetches each trace of O(traces) by id and checks that one of its spans carries the expected attributes, for
    example C(gen_ai.request.model=gpt-4) and the token counts C(gen_ai.usage.input_tokens) /
    C(gen_ai.usage.output_tokens).
  - Runs a TraceQL search (O(query)) that must find traces, optionally including given trace ids.
  - Each check polls until it passes or O(deadline) ends, since spans reach Tempo's query path a few seconds after
    the request. A trace that never shows up fails with cause C(trace_missing), a span without an attribute with
    C(attribute_missing); each with the fix.
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
  traces:
    description: Traces to fetch by id.
    type: list
    elements: dict
    default: []
    suboptions:
      id:
        description: The trace id (32 hex digits, as in a W3C C(traceparent)).
        type: str
        required: true
      attributes:
        description:
          - Attribute name -> expected value; C("*") only requires the attribute. One span must carry all of them.
          - Names starting with C(resource.) are read from the span's resource (for example C(resource.service.name)).
        type: dict
        default: {}
      title:
        description: One line for humans.
        type: str
  api_version:
    description: C(v2) uses C(/api/v2/traces/<id>), C(v1) the older C(/api/traces/<id>).
    type: str
    choices: [v1, v2]
    default: v2
  query:
    description: A TraceQL query for C(/api/search), for example C({ span.gen_ai.request.model = "gpt-4" }).
    type: str
  min_traces:
    description: The search must find at least this many traces.
    type: int
    default: 1
  expect_trace_ids:
    description: Trace ids the search must find.
    type: list
    elements: str
    default: []
  limit:
    description: Search result limit.
    type: int
    default: 20
  since:
    description: The search looks back this many seconds.
    type: int
    default: 3600
notes:
  - Tempo cannot run on the machines that test this collection. The module is tested against a local server that
    implements these endpoints as Tempo's API reference documents them (contract tests), not against Tempo.
seealso:
  - name: Tempo HTTP API
    description: The endpoints this module reads.
    link: https://grafana.com/docs/tempo/latest/api_docs/
attributes:
  check_mode:
    support: full
    description: Reads only.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: The traces of our own requests reached Tempo with their GenAI attributes
  agentgateway.observability.tempo_search:
    access: nodeport
    service: {host_port: 30200}
    deadline: 60
    traces:
      - id: 4bf92f3577b34da6a3ce929d0e0e4736
        attributes:
          gen_ai.request.model: gpt-4
          gen_ai.usage.input_tokens: "*"
          gen_ai.usage.output_tokens: "*"

- name: TraceQL search through the API server proxy
  agentgateway.observability.tempo_search:
    access: proxy
    service: {namespace: monitoring, name: tempo, port: "3200"}
    query: '{ span.gen_ai.request.model != nil }'
    min_traces: 1
"""

RETURN = r"""
checks:
  description: One result per check; see M(agentgateway.observability.service_probe).
  returned: always
  type: list
  elements: dict
traces:
  description: By trace id, what the best matching span showed (span name, service, gen_ai/llm attributes).
  returned: always
  type: dict
search:
  description: Traces the search found (id, root service, root span name), at most 50.
  returned: when O(query) is set
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
from ansible_collections.agentgateway.observability.plugins.module_utils import tempo_api
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    access_argument_spec,
    service_suboptions,
)


def argument_spec():
    spec = access_argument_spec()
    spec.update(
        service=dict(type="dict", required=True, options=service_suboptions()),
        ready=dict(type="bool", default=True),
        traces=dict(type="list", elements="dict", default=[], options=dict(
            id=dict(type="str", required=True),
            attributes=dict(type="dict", default={}),
            title=dict(type="str"),
        )),
        api_version=dict(type="str", choices=["v1", "v2"], default="v2"),
        query=dict(type="str"),
        min_traces=dict(type="int", default=1),
        expect_trace_ids=dict(type="list", elements="str", default=[]),
        limit=dict(type="int", default=20),
        since=dict(type="int", default=3600),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    try:
        traces = [dict(t, id=tempo_api.normalize_trace_id(t["id"])) for t in params["traces"]]
        expect_ids = [tempo_api.normalize_trace_id(i) for i in params["expect_trace_ids"]]
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    def collect(services, deadline, backoff, results, out):
        access = services.open(params["service"], "tempo")
        if params["ready"]:
            results.append(tempo_api.ready_check(access, deadline, backoff))
        for trace in traces:
            check = tempo_api.trace_check(access, trace["id"], trace["attributes"], deadline, backoff,
                                          params["api_version"], trace.get("title"))
            out["traces"][trace["id"]] = check.get("details") or {}
            results.append(check)
        if params["query"]:
            check = tempo_api.search_check(access, params["query"], deadline, backoff, params["min_traces"],
                                           params["limit"], params["since"], expect_ids)
            out["search"] = (check.get("details") or {}).get("traces", [])
            results.append(check)

    agw_checks.run_checks_module(module, "tempo", "Tempo", collect, {"traces": {}})


if __name__ == "__main__":
    main()
