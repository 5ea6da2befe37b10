#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: verification_report
short_description: Write the verification report - a table for the output, and JSON, Markdown and JUnit XML files
version_added: 0.1.0
description:
  - Takes the check results of the verification modules (M(agentgateway.observability.service_probe),
    M(agentgateway.observability.prometheus_query), M(agentgateway.observability.grafana_info),
    M(agentgateway.observability.tempo_search), M(agentgateway.observability.loki_query)) and writes one report.
  - Returns a compact table for the Ansible output; each failure is followed by its likely cause and fix.
  - Writes C(<name>.json), C(<name>.md) and C(<name>.junit.xml) into O(dest) (a CI pipeline reads the JUnit file).
  - Fails after writing when a check failed, unless O(fail_on_error=false).
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  checks:
    description: Check results, as the verification modules return them in C(checks).
    type: list
    elements: dict
    required: true
  dest:
    description: Directory for the report files (created when missing).
    type: path
    required: true
  name:
    description: Base name of the files.
    type: str
    default: verification
  formats:
    description: Which files to write.
    type: list
    elements: str
    choices: [json, markdown, junit]
    default: [json, markdown, junit]
  context:
    description: Facts about the run shown in the report (access mode, trace ids, models, ...).
    type: dict
    default: {}
  fail_on_error:
    description: Fail when a check failed (after writing the files).
    type: bool
    default: true
notes:
  - In check mode nothing is written; the table and the paths that would be written are returned.
attributes:
  check_mode:
    support: full
    description: Writes nothing in check mode.
  diff_mode:
    support: none
    description: The report is output, not configuration.
"""

EXAMPLES = r"""
- name: One report from every verification module's results
  agentgateway.observability.verification_report:
    checks: "{{ probe.checks + prometheus.checks + tempo.checks + grafana.checks }}"
    dest: "{{ playbook_dir }}/verification-report"
    context:
      access: nodeport
  register: report

- name: Show the table
  ansible.builtin.debug:
    msg: "{{ report.table }}"
"""

RETURN = r"""
table:
  description: The compact table, one line per check, cause and fix below each failure, a summary line last.
  returned: always
  type: list
  elements: str
  sample:
    - "ok    prometheus.ready      HTTP 200 Prometheus Server is Ready."
    - "FAIL  tempo.trace.4bf9...   HTTP 404: trace not found"
    - "      cause: trace_missing - Tempo has no trace with this id."
    - "      fix: Check the gateway's tracing policy ..."
    - "2 checks: 1 passed, 1 failed, 0 skipped"
files:
  description: Format -> path of each file written (or that would be written in check mode).
  returned: always
  type: dict
  sample: {"json": "/tmp/report/verification.json", "junit": "/tmp/report/verification.junit.xml"}
summary:
  description: Counts of checks by status.
  returned: always
  type: dict
passed:
  description: True when no check failed.
  returned: always
  type: bool
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes

from ansible_collections.agentgateway.observability.plugins.module_utils import report as agw_report


def main():
    module = AnsibleModule(
        argument_spec=dict(
            checks=dict(type="list", elements="dict", required=True),
            dest=dict(type="path", required=True),
            name=dict(type="str", default="verification"),
            formats=dict(type="list", elements="str", choices=["json", "markdown", "junit"],
                         default=["json", "markdown", "junit"]),
            context=dict(type="dict", default={}),
            fail_on_error=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    if not params["name"] or "/" in params["name"]:
        module.fail_json(msg="name must be a file base name without '/', got %r" % params["name"])
    report = agw_report.build(params["checks"], params["context"])
    files, changed = {}, False
    for fmt in params["formats"]:
        suffix, render = agw_report.RENDERERS[fmt]
        path = os.path.join(params["dest"], "%s.%s" % (params["name"], suffix))
        files[fmt] = path
        if module.check_mode:
            continue
        data = to_bytes(render(report))
        try:
            os.makedirs(params["dest"], exist_ok=True)
            old = None
            if os.path.exists(path):
                with open(path, "rb") as handle:
                    old = handle.read()
            if old != data:
                tmp = path + ".tmp"
                with open(tmp, "wb") as handle:
                    handle.write(data)
                os.replace(tmp, path)
                changed = True
        except OSError as exc:
            module.fail_json(msg="cannot write the report to %s: %s" % (path, exc))
    out = dict(changed=changed, table=agw_report.table(report), files=files, summary=report["summary"],
               passed=report["passed"])
    if not report["passed"] and params["fail_on_error"]:
        failed = [c["id"] for c in report["checks"] if c.get("status") == "failed"]
        module.fail_json(msg="verification failed: %d of %d checks (%s); the report is in %s" % (
            len(failed), report["summary"]["total"], ", ".join(failed), params["dest"]), **out)
    module.exit_json(**out)


if __name__ == "__main__":
    main()
