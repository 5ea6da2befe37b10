# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The verification report: a compact table, and JSON, Markdown and JUnit XML files (pure, no I/O).

``build(checks, context)`` makes the report document; ``table``, ``markdown``, ``junit_xml`` and
``to_json`` render it. JUnit XML follows the common schema CI systems read (testsuites >
testsuite > testcase with failure/skipped), one testcase per check, classname
``agentgateway.observability.<component>``.
"""

from __future__ import annotations

import datetime
import json
import xml.etree.ElementTree as ET

from ansible_collections.agentgateway.observability.plugins.module_utils.checks import summary

TITLE = "agentgateway.observability verification"
STATUS_MARK = {"passed": "ok", "failed": "FAIL", "skipped": "skip"}


def build(checks, context=None, generated_at=None):
    checks = [dict(c) for c in checks or [] if isinstance(c, dict) and c.get("id")]
    when = generated_at or datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()
    return {"title": TITLE, "generated_at": when, "context": dict(context or {}), "summary": summary(checks),
            "passed": all(c.get("status") != "failed" for c in checks), "checks": checks}


def _cut(text, width):
    text = " ".join(str(text or "").split())
    return text if len(text) <= width else text[:width - 3] + "..."


def table(report, width=110):
    """Lines for the Ansible output: one per check, and for each failure its cause and fix."""
    checks = report["checks"]
    id_width = min(max([len(c["id"]) for c in checks] + [5]), 44)
    lines = []
    for check in checks:
        mark = STATUS_MARK.get(check.get("status"), "?")
        lines.append("%-4s  %-*s  %s" % (mark, id_width, _cut(check["id"], id_width),
                                         _cut(check.get("saw") if check.get("status") != "passed" else
                                              check.get("saw") or check.get("title"), width - id_width - 8)))
        if check.get("status") == "failed":
            lines.append("      cause: %s - %s" % (check.get("cause"), _cut(check.get("explanation"), width - 20)))
            lines.append("      fix: %s" % _cut(check.get("fix"), width * 2))
    s = report["summary"]
    lines.append("%d checks: %d passed, %d failed, %d skipped" % (s["total"], s["passed"], s["failed"], s["skipped"]))
    return lines


def to_json(report):
    return json.dumps(report, indent=2, sort_keys=True, default=str) + "\n"


def _md(text):
    return str(text if text is not None else "").replace("|", "\\|").replace("\n", " ")


def markdown(report):
    s = report["summary"]
    out = ["# %s" % report["title"], "",
           "Generated %s. **%s**: %d checks, %d passed, %d failed, %d skipped." % (
               report["generated_at"], "PASSED" if report["passed"] else "FAILED", s["total"], s["passed"],
               s["failed"], s["skipped"]), ""]
    if report.get("context"):
        out += ["| setting | value |", "|---|---|"]
        out += ["| %s | %s |" % (_md(k), _md(json.dumps(v) if not isinstance(v, str) else v))
                for k, v in sorted(report["context"].items())]
        out.append("")
    out += ["| status | check | seen |", "|---|---|---|"]
    for check in report["checks"]:
        out.append("| %s | %s | %s |" % (STATUS_MARK.get(check.get("status"), "?"), _md(check["id"]),
                                         _md(check.get("saw"))))
    failed = [c for c in report["checks"] if c.get("status") == "failed"]
    if failed:
        out += ["", "## Failures", ""]
        for check in failed:
            out += ["### %s" % check["id"], "", "- **check:** %s" % _md(check.get("title")),
                    "- **tried:** %s" % _md(check.get("tried")), "- **saw:** %s" % _md(check.get("saw")),
                    "- **likely cause** (`%s`): %s" % (check.get("cause"), _md(check.get("explanation"))),
                    "- **fix:** %s" % _md(check.get("fix")), ""]
    return "\n".join(out).rstrip() + "\n"


def junit_xml(report):
    s = report["summary"]
    total_time = sum(float(c.get("elapsed_s") or 0) for c in report["checks"])
    suites = ET.Element("testsuites", name=report["title"], tests=str(s["total"]), failures=str(s["failed"]),
                        errors="0", skipped=str(s["skipped"]), time="%.3f" % total_time)
    suite = ET.SubElement(suites, "testsuite", name="verification", tests=str(s["total"]),
                          failures=str(s["failed"]), errors="0", skipped=str(s["skipped"]),
                          time="%.3f" % total_time, timestamp=report["generated_at"])
    if report.get("context"):
        props = ET.SubElement(suite, "properties")
        for key, value in sorted(report["context"].items()):
            ET.SubElement(props, "property", name=str(key),
                          value=value if isinstance(value, str) else json.dumps(value, default=str))
    for check in report["checks"]:
        classname = "agentgateway.observability.%s" % (check.get("service") or "check")
        case = ET.SubElement(suite, "testcase", classname=classname, name=check["id"],
                             time="%.3f" % float(check.get("elapsed_s") or 0))
        body = "check: %s\ntried: %s\nsaw: %s" % (check.get("title"), check.get("tried"), check.get("saw"))
        if check.get("status") == "failed":
            failure = ET.SubElement(case, "failure", type=str(check.get("cause")),
                                    message="%s: %s" % (check.get("cause"), check.get("explanation")))
            failure.text = "%s\nlikely cause: %s\nfix: %s" % (body, check.get("explanation"), check.get("fix"))
        elif check.get("status") == "skipped":
            ET.SubElement(case, "skipped", message=str(check.get("saw")))
        ET.SubElement(case, "system-out").text = body
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(suites, encoding="unicode") + "\n"


RENDERERS = {"json": ("json", to_json), "markdown": ("md", markdown), "junit": ("junit.xml", junit_xml)}
