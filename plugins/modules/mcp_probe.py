#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: mcp_probe
short_description: Run one MCP session against a server or a gateway's MCP route and check every step
version_added: 0.1.0
description:
  - Speaks the streamable HTTP transport of the MCP specification 2025-06-18 to O(service) at O(path) - C(initialize)
    (keeping the C(Mcp-Session-Id) it may return), C(notifications/initialized), C(tools/list), then each of O(tools)
    with C(tools/call), and ends the session with C(DELETE).
  - "Every message is a C(POST) with C(Accept: application/json, text/event-stream); the answer may be one JSON message
    or a Server-Sent Events stream (agentgateway answers MCP clients with a stream)."
  - Returns one check per step, in the shape of the other verification modules - C(<id_prefix>.initialize),
    C(<id_prefix>.tools_list) and C(<id_prefix>.tools_call.<tool>) - each saying what was tried, what was seen, and for
    a failure the cause and the fix.
  - The whole session is retried (exponential backoff) until every step passes or O(deadline) ends, since a route may
    still be on its way to the gateway.
  - Sends traffic but changes no configuration; never reports a change.
author:
  - agentgateway.observability contributors (!UNKNOWN)
extends_documentation_fragment:
  - agentgateway.observability.access
  - agentgateway.observability.access.service
options:
  path:
    description: Path of the MCP endpoint on O(service), for example the mock backend's MCP route C(/mcp).
    type: str
    default: /mcp
  tools:
    description: The C(tools/call) requests, in order; each tool must be listed by C(tools/list).
    type: list
    elements: dict
    default: []
    suboptions:
      name:
        description: The tool's name.
        type: str
        required: true
      arguments:
        description: The tool's arguments.
        type: dict
        default: {}
      expect_error:
        description: The call must answer a JSON-RPC error (for example the mock MCP server's C(fail) tool).
        type: bool
        default: false
      text_regex:
        description: The text content of the result must match this regular expression.
        type: str
  id_prefix:
    description: Prefix of the check ids.
    type: str
    default: mcp
  title:
    description: Words naming what is probed, used in the check titles.
    type: str
    default: the MCP server
  fixes:
    description: Cause code -> fix text, replacing the general fix for that cause (for example C(not_found)).
    type: dict
    default: {}
notes:
  - In check mode nothing is sent (every message is a C(POST)); every check is reported as skipped.
seealso:
  - module: agentgateway.observability.openai_traffic
  - name: MCP specification 2025-06-18, transports
    description: The streamable HTTP transport this module speaks.
    link: https://modelcontextprotocol.io/specification/2025-06-18/basic/transports
attributes:
  check_mode:
    support: full
    description: Sends nothing; every check is reported as skipped.
  diff_mode:
    support: none
    description: Nothing changes.
"""

EXAMPLES = r"""
- name: An MCP session through the gateway's MCP route, the echo tool and the failing tool
  agentgateway.observability.mcp_probe:
    service: {url: "http://localhost:8080"}
    path: /mcp
    id_prefix: gateway.mcp
    title: the gateway's MCP route
    tools:
      - name: echo
        arguments: {text: "hello"}
        text_regex: "^hello$"
      - name: fail
        expect_error: true
    deadline: 60
    fail_on_error: false
  register: mcp

- name: Show the steps
  ansible.builtin.debug:
    msg: "{{ mcp.checks | map(attribute='saw') | list }}"
"""

RETURN = r"""
checks:
  description: One result per step (see M(agentgateway.observability.service_probe)); steps after a failed one are skipped.
  returned: always
  type: list
  elements: dict
  sample:
    - id: gateway.mcp.initialize
      title: The gateway's MCP route answers initialize
      service: gateway
      status: passed
      tried: "POST http://localhost:8080/mcp initialize (protocolVersion 2025-06-18), then notifications/initialized"
      saw: protocolVersion 2025-06-18, server agentgateway, session id given
session:
  description: The last session - its id (given or not), the negotiated protocol version, C(serverInfo) and every exchange.
  returned: always
  type: dict
  sample:
    session_id_given: true
    protocol_version: "2025-06-18"
    server_info: {"name": "agentgateway", "version": "1.4.1"}
    exchanges: [{"method": "initialize", "status": 200, "outcome": "ok"}]
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
from ansible_collections.agentgateway.observability.plugins.module_utils.access import (
    Outcome,
    access_argument_spec,
    poll,
    service_suboptions,
)
from ansible_collections.agentgateway.observability.plugins.module_utils.mcp_client import (
    McpSession,
    run_probe_session,
)


def argument_spec():
    spec = access_argument_spec()
    spec.update(
        service=dict(type="dict", required=True, options=service_suboptions()),
        path=dict(type="str", default="/mcp"),
        tools=dict(type="list", elements="dict", default=[], options=dict(
            name=dict(type="str", required=True),
            arguments=dict(type="dict", default={}),
            expect_error=dict(type="bool", default=False),
            text_regex=dict(type="str"),
        )),
        id_prefix=dict(type="str", default="mcp"),
        title=dict(type="str", default="the MCP server"),
        fixes=dict(type="dict", default={}),
    )
    return spec


def steps_of(params):
    """(step key, check id, title) of every check, in order."""
    prefix, title = params["id_prefix"], params["title"]
    out = [("initialize", "%s.initialize" % prefix, "%s answers initialize (and notifications/initialized)" % title),
           ("tools_list", "%s.tools_list" % prefix, "%s lists its tools" % title)]
    for tool in params["tools"]:
        what = "fails as expected" if tool["expect_error"] else "answers"
        out.append(("tools_call.%s" % tool["name"], "%s.tools_call.%s" % (prefix, tool["name"]),
                    "%s: tools/call %s %s" % (title, tool["name"], what)))
    return out


def collect(module, label):
    params = module.params

    def run(services, deadline, backoff, results, out):
        access = services.open(params["service"], label)
        url = access.url(params["path"])
        tried = "POST %s: initialize, notifications/initialized, tools/list%s (%s)" % (
            url, "".join(", tools/call %s" % t["name"] for t in params["tools"]), access.describe())
        steps = steps_of(params)
        if module.check_mode:
            for _key, check_id, title in steps:
                results.append(agw_checks.result(check_id, title, label, False, tried, "not sent in check mode (MCP "
                                                 "messages are POSTs that send traffic)", access=access, skipped=True))
            out["session"] = {}
            return
        state = {}

        def attempt():
            session = McpSession(access.client, url, timeout=deadline.timeout(access.timeout))
            ok, cause, saw, done = run_probe_session(session, params["tools"])
            state.update(session=session, steps=done)
            return Outcome(ok, cause, saw)

        outcome = poll(deadline, attempt, backoff=backoff)
        session, done = state["session"], state["steps"]
        for key, check_id, title in steps:
            step = done.get(key)
            if step is None:
                results.append(agw_checks.result(check_id, title, label, False, tried, "not sent: an earlier step "
                                                 "failed", access=access, skipped=True, attempts=outcome.attempts,
                                                 elapsed=deadline.elapsed()))
                continue
            results.append(agw_checks.result(
                check_id, title, label, step["ok"], tried, step["saw"], cause=step["cause"], access=access,
                fix=(params["fixes"] or {}).get(step["cause"]) if not step["ok"] else None,
                attempts=outcome.attempts, elapsed=deadline.elapsed()))
        out["session"] = {"session_id_given": bool(session.session_id), "protocol_version": session.protocol_version,
                          "server_info": session.server_info,
                          "exchanges": [{k: v for k, v in call.items() if k != "latency"} for call in session.calls]}
    return run


def main():
    module = AnsibleModule(argument_spec=argument_spec(), supports_check_mode=True)
    if not module.params["path"].startswith("/"):
        module.fail_json(msg="path must start with /, got %r" % module.params["path"])
    label = module.params["id_prefix"].split(".")[0] or "mcp"
    agw_checks.run_checks_module(module, label, "MCP", collect(module, label))


if __name__ == "__main__":
    main()
