#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: service_probe
short_description: Run many HTTP checks at once, each with its expected status and body, until a deadline
version_added: 0.1.0
description:
  - Sends every check in O(checks) concurrently and retries each one (exponential backoff) until its answer has the
    expected status and body, or its deadline is reached.
  - Each service is reached by URL, by a kind NodePort host port, or through the Kubernetes API server's service proxy
    (O(access)), so the same checks run on a laptop and on any cluster.
  - Expectations are a status list, JSON paths (equal to a value, matching a regular expression, a minimum number of
    values, or absent), a regular expression on the body, or a sum over a Prometheus text exposition (O(checks[].metric)).
  - Every check result says what was tried, what was seen, and for a failure the likely cause and the fix
    (connection refused, DNS, TLS, timeout, 401, 403, 404, 5xx, no endpoints behind a Service, ...).
  - Reads only, unless a check uses another method than GET or HEAD (the verification role sends its chat
    completions this way). Never reports a change.
author:
  - agentgateway.observability contributors (!UNKNOWN)
extends_documentation_fragment:
  - agentgateway.observability.access
options:
  checks:
    description: The checks, run concurrently.
    type: list
    elements: dict
    required: true
    suboptions:
      id:
        description: Identifier of the check in the results, for example C(prometheus.ready).
        type: str
        required: true
      title:
        description: One line for humans; default O(checks[].id).
        type: str
      label:
        description:
          - The component checked (C(prometheus), C(grafana), C(gateway), ...), used to word the fixes.
          - Default the part of O(checks[].id) before the first dot.
        type: str
      service:
        description: The service to reach; same keys as the C(service) option of the other verification modules.
        type: dict
        required: true
        suboptions:
          access:
            description: Overrides O(access) for this check.
            type: str
            choices: [nodeport, proxy, url]
          url:
            description: Base URL (C(url) access).
            type: str
          host_port:
            description: Host port mapped to the NodePort (C(nodeport) access).
            type: int
          node_address:
            description: Host of the NodePort URL; overrides O(node_address).
            type: str
          namespace:
            description: Namespace of the Service (C(proxy) access).
            type: str
          name:
            description: Name of the Service (C(proxy) access).
            type: str
          port:
            description: Port of the Service, number or name (C(proxy) access).
            type: str
          scheme:
            description: Scheme the service speaks.
            type: str
            choices: [http, https]
            default: http
      method:
        description: HTTP method.
        type: str
        default: GET
      path:
        description: Path (and query) appended to the service's base URL.
        type: str
        default: /
      params:
        description: Query parameters added to O(checks[].path).
        type: dict
      headers:
        description: Headers of this check (on top of O(headers)).
        type: dict
      body:
        description: Request body; a mapping or list is sent as JSON, a string as it is.
        type: raw
      status:
        description: Accepted statuses.
        type: list
        elements: int
        default: [200]
      json:
        description:
          - Expectations on the JSON answer. O(checks[].json[].path) is a path such as C(data.result[0].value[1]) or
            C(data.activeTargets[*].health) (C([*]) takes every element).
          - Without C(equals), C(regex) or C(exists=false), the path must hold at least C(min_count) values (default 1).
        type: list
        elements: dict
        suboptions:
          path:
            description: The JSON path.
            type: str
            required: true
          equals:
            description: Every value at the path must equal this.
            type: raw
          regex:
            description: Every value at the path must match this regular expression.
            type: str
          min_count:
            description: The path must hold at least this many values.
            type: int
          exists:
            description: C(false) requires that the path holds nothing.
            type: bool
      body_regex:
        description: The body must match this regular expression.
        type: str
      metric:
        description:
          - The body is a Prometheus text exposition (for example the gateway's C(/metrics)); the sum of a metric's
            samples, over the series whose labels match O(checks[].metric.labels), must lie between C(min) and C(max).
          - The sum is returned in C(details.metric) either way. Without C(min) or C(max) a missing metric counts as 0.
        type: dict
        suboptions:
          name:
            description: Metric name, for example C(agentgateway_requests_total).
            type: str
            required: true
          labels:
            description: Label name -> regular expression (fully anchored) the series must match.
            type: dict
          min:
            description: Lowest accepted sum.
            type: float
          max:
            description: Highest accepted sum.
            type: float
      username:
        description: Basic auth user for this check.
        type: str
      password:
        description: Basic auth password for this check.
        type: str
      bearer_token:
        description: Bearer token for this check.
        type: str
      deadline:
        description: Deadline of this check in seconds; default O(deadline).
        type: float
      cause:
        description: Cause code reported when the answer arrives but misses the expectations (default C(expectation)).
        type: str
      explanation:
        description: What a failure of the expectations means, for the report.
        type: str
      fix:
        description: What to do when the expectations are missed, for the report.
        type: str
      fixes:
        description: Cause code -> fix text, replacing the general fix for that cause (for example C(server_error)).
        type: dict
  concurrency:
    description: How many checks run at the same time.
    type: int
    default: 16
notes:
  - In check mode only GET, HEAD and OPTIONS checks are sent; the others are reported as skipped.
  - Through the API server proxy (C(proxy) access) a service's own C(Authorization) cannot be sent, because the API server
    removes that header after it authenticated the kubeconfig user; such checks fail with a configuration error.
seealso:
  - module: agentgateway.observability.prometheus_query
  - module: ansible.builtin.uri
attributes:
  check_mode:
    support: partial
    description: GET, HEAD and OPTIONS checks run; others are skipped and reported.
    details: Checks with another method (for example the POSTs the verification role sends) are not sent in check mode.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: Prometheus and Grafana answer, by their kind host ports
  agentgateway.observability.service_probe:
    access: nodeport
    checks:
      - id: prometheus.ready
        service: {host_port: 30090}
        path: /-/ready
      - id: grafana.health
        service: {host_port: 30080}
        path: /api/health
        json:
          - path: database
            equals: ok

- name: The gateway's metrics count requests, through the API server proxy (any cluster)
  agentgateway.observability.service_probe:
    access: proxy
    kubeconfig: ~/.kube/config
    deadline: 60
    checks:
      - id: gateway.metrics
        service: {namespace: agentgateway-system, name: agentgateway-proxy-metrics, port: "15020"}
        path: /metrics
        metric:
          name: agentgateway_requests_total
          min: 1
  register: probe

- name: Collect the results without failing, for a report
  agentgateway.observability.service_probe:
    fail_on_error: false
    checks:
      - id: tempo.ready
        service: {url: "http://localhost:3200"}
        path: /ready
        body_regex: ready
  register: tempo
"""

RETURN = r"""
checks:
  description:
    - One result per check, in the order given. C(status) is C(passed), C(failed) or C(skipped).
    - C(tried) and C(saw) say what was sent and what came back; for a failure, C(cause) is a code (for example
      C(connection_refused), C(dns), C(tls), C(timeout), C(unauthorized), C(no_endpoints), C(expectation)),
      C(explanation) says what it means and C(fix) what to do.
    - C(details) holds the last HTTP status, the URL, the JSON values at each path and the metric sum.
  returned: always
  type: list
  elements: dict
  sample:
    - id: prometheus.ready
      title: prometheus.ready
      service: prometheus
      status: failed
      tried: GET http://localhost:30090/-/ready, expecting status 200
      saw: "GET http://localhost:30090/-/ready failed: ConnectionRefusedError ([Errno 111] Connection refused)"
      cause: connection_refused
      explanation: Nothing accepts connections at http://localhost:30090 (host port 30090 mapped to a NodePort).
      fix: On kind, the cluster must map host port 30090 to the Service's NodePort ...
      attempts: 6
      elapsed_s: 30.0
summary:
  description: Counts of checks by status.
  returned: always
  type: dict
  sample: {total: 2, passed: 1, failed: 1, skipped: 0}
passed:
  description: True when no check failed.
  returned: always
  type: bool
elapsed_s:
  description: Wall-clock seconds for all checks.
  returned: always
  type: float
"""

import time

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.agentgateway.observability.plugins.module_utils import checks as agw_checks
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    AccessError,
    Services,
    access_argument_spec,
    service_suboptions,
)
from ansible_collections.agentgateway.observability.plugins.module_utils.probe import run_checks


def argument_spec():
    spec = access_argument_spec()
    spec.update(
        checks=dict(type="list", elements="dict", required=True, options=dict(
            id=dict(type="str", required=True),
            title=dict(type="str"),
            label=dict(type="str"),
            service=dict(type="dict", required=True, options=service_suboptions()),
            method=dict(type="str", default="GET"),
            path=dict(type="str", default="/"),
            params=dict(type="dict"),
            headers=dict(type="dict"),
            body=dict(type="raw"),
            status=dict(type="list", elements="int", default=[200]),
            json=dict(type="list", elements="dict", options=dict(
                path=dict(type="str", required=True),
                equals=dict(type="raw"),
                regex=dict(type="str"),
                min_count=dict(type="int"),
                exists=dict(type="bool"),
            )),
            body_regex=dict(type="str"),
            metric=dict(type="dict", options=dict(
                name=dict(type="str", required=True),
                labels=dict(type="dict"),
                min=dict(type="float"),
                max=dict(type="float"),
            )),
            username=dict(type="str"),
            password=dict(type="str", no_log=True),
            bearer_token=dict(type="str", no_log=True),
            deadline=dict(type="float"),
            cause=dict(type="str"),
            explanation=dict(type="str"),
            fix=dict(type="str"),
            fixes=dict(type="dict"),
        )),
        concurrency=dict(type="int", default=16),
    )
    return spec


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    params = module.params
    if params["concurrency"] < 1:
        module.fail_json(msg="concurrency must be at least 1, got %d" % params["concurrency"])
    ids = [c["id"] for c in params["checks"]]
    duplicates = sorted(set(i for i in ids if ids.count(i) > 1))
    if duplicates:
        module.fail_json(msg="check ids must be unique; repeated: %s" % ", ".join(duplicates))
    services = Services(params)
    started = time.monotonic()
    try:
        results = run_checks(services, params["checks"], params["concurrency"], params["deadline"],
                             params["backoff"], module.check_mode)
    except AccessError as exc:
        module.fail_json(msg=str(exc))
    finally:
        services.close()
    summary = agw_checks.summary(results)
    out = dict(changed=False, checks=results, summary=summary, passed=summary["failed"] == 0,
               elapsed_s=round(time.monotonic() - started, 3))
    if summary["failed"] and params["fail_on_error"]:
        failed = [c for c in results if c["status"] == "failed"]
        module.fail_json(msg="%d of %d checks failed: %s" % (len(failed), len(results), "; ".join(
            "%s (%s)" % (c["id"], c["cause"]) for c in failed)), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
