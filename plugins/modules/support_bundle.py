#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: support_bundle
short_description: Write a support bundle - a folder and a tarball, with every secret value removed
version_added: 0.1.0
description:
  - Writes the sections gathered by C(playbooks/diagnose.yml) (pods, events, Helm release status, logs, the gateway's
    telemetry configuration, the verification report) into a new folder C(<dest>/<name>-<UTC time>) and packs it into
    C(<folder>.tar.gz).
  - Before anything is written, every section is cleaned of secrets (module_utils/redact.py) - Secret data, values
    under keys such as C(password), C(token), C(apiKey), C(authorization), header maps, secret-looking environment
    variables, C(Bearer)/C(Basic) credentials, passwords in URLs, PEM private keys - and of every value of
    O(secret_values). Files copied in with O(copy) are cleaned the same way.
  - A C(README.txt) in the bundle lists its files and how many values were removed.
author:
  - agentgateway.observability contributors (!UNKNOWN)
options:
  dest:
    description: Directory that receives the bundle folder and the tarball (created when missing).
    type: path
    required: true
  name:
    description: Prefix of the folder and tarball names.
    type: str
    default: agw-obs-support
  timestamp:
    description: Append the UTC time to the name, so every run makes a new bundle.
    type: bool
    default: true
  sections:
    description:
      - Relative file name -> content. Strings are written as they are (after cleaning), anything else as YAML.
      - Names may contain sub-folders (C(logs/monitoring/grafana-0.log)); absolute names and C(..) are refused.
    type: dict
    required: true
  copy:
    description: Files or folders copied (cleaned) into C(files/) of the bundle, for example the verification report.
    type: list
    elements: path
    default: []
  secret_values:
    description: Values removed wherever they appear (for example the Grafana admin password).
    type: list
    elements: str
    default: []
  tarball:
    description: Also pack the folder into C(<folder>.tar.gz).
    type: bool
    default: true
notes:
  - Cleaning is pattern based. It removes what the collection and its tests know to be secret; read a bundle before
    sending it to anyone.
attributes:
  check_mode:
    support: full
    description: Writes nothing; returns the files that would be written.
  diff_mode:
    support: none
    description: A bundle is output, not configuration.
"""

EXAMPLES = r"""
- name: A support bundle from gathered facts
  agentgateway.observability.support_bundle:
    dest: /tmp/agw-obs-support
    sections:
      pods.yaml: "{{ pods.resources }}"
      events.yaml: "{{ events.resources }}"
      logs/monitoring/grafana-0.log: "{{ grafana_log.log | default('logs unavailable') }}"
    copy:
      - "{{ playbook_dir }}/verification-report"
    secret_values:
      - "{{ grafana_password }}"
  register: bundle
"""

RETURN = r"""
path:
  description: The bundle folder.
  returned: always
  type: str
  sample: /tmp/agw-obs-support/agw-obs-support-20260101T120000Z
tarball:
  description: The tarball, when O(tarball=true).
  returned: when O(tarball=true)
  type: str
  sample: /tmp/agw-obs-support/agw-obs-support-20260101T120000Z.tar.gz
files:
  description: Files in the bundle, relative to RV(path).
  returned: always
  type: list
  elements: str
redactions:
  description: How many secret values were removed.
  returned: always
  type: int
"""

import datetime
import json
import os
import tarfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_bytes, to_text

from ansible_collections.agentgateway.observability.plugins.module_utils.redact import redact, redact_text

try:
    import yaml

    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with Ansible on the controller
    HAS_YAML = False


def _safe_name(name):
    norm = os.path.normpath(name)
    if os.path.isabs(name) or norm.startswith("..") or norm in (".", ""):
        raise ValueError("section name %r must be a relative path inside the bundle" % name)
    return norm


def _dump(data):
    if HAS_YAML:
        return yaml.safe_dump(data, sort_keys=True, default_flow_style=False, allow_unicode=True)
    return json.dumps(data, indent=2, sort_keys=True, default=str) + "\n"


def _collect_copies(paths):
    """[(relative name under files/, absolute source)] of every file to copy."""
    out = []
    for source in paths:
        source = os.path.abspath(source)
        if os.path.isdir(source):
            base = os.path.basename(source.rstrip("/"))
            for root, _dirs, names in os.walk(source):
                for file_name in sorted(names):
                    full = os.path.join(root, file_name)
                    out.append((os.path.join("files", base, os.path.relpath(full, source)), full))
        elif os.path.isfile(source):
            out.append((os.path.join("files", os.path.basename(source)), source))
    return out


def main():
    module = AnsibleModule(
        argument_spec=dict(
            dest=dict(type="path", required=True),
            name=dict(type="str", default="agw-obs-support"),
            timestamp=dict(type="bool", default=True),
            sections=dict(type="dict", required=True),
            copy=dict(type="list", elements="path", default=[]),
            secret_values=dict(type="list", elements="str", default=[], no_log=True),
            tarball=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    params = module.params
    stamp = datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")
    folder_name = "%s-%s" % (params["name"], stamp) if params["timestamp"] else params["name"]
    if "/" in folder_name:
        module.fail_json(msg="name must not contain '/', got %r" % params["name"])
    folder = os.path.join(params["dest"], folder_name)
    secrets = [s for s in params["secret_values"] if s]
    contents, total = {}, 0
    try:
        for name, value in sorted(params["sections"].items()):
            name = _safe_name(name)
            if isinstance(value, str):
                text, count = redact_text(value, secrets)
            else:
                cleaned, count = redact(value, secrets)
                text = _dump(cleaned)
            contents[name] = text
            total += count
    except ValueError as exc:
        module.fail_json(msg=str(exc))
    missing = [p for p in params["copy"] if not os.path.exists(p)]
    for rel, source in _collect_copies(params["copy"]):
        with open(source, "rb") as handle:
            text, count = redact_text(to_text(handle.read(), errors="surrogate_or_replace"), secrets)
        contents[rel] = text
        total += count
    readme = ["agentgateway.observability support bundle, %s" % stamp, "",
              "Secret values removed before writing: %d (pattern based; read before sharing)." % total, ""]
    if missing:
        readme += ["Not found, so not included (a verification report exists after playbooks/verify.yml): %s"
                   % ", ".join(missing), ""]
    readme += ["Files:"] + ["  %s" % n for n in sorted(contents)]
    contents["README.txt"] = "\n".join(readme) + "\n"
    files = sorted(contents)
    result = dict(changed=not module.check_mode, path=folder, files=files, redactions=total)
    if params["tarball"]:
        result["tarball"] = folder + ".tar.gz"
    if module.check_mode:
        module.exit_json(**result)
    try:
        for name, text in contents.items():
            path = os.path.join(folder, name)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(to_bytes(text, errors="surrogate_or_replace"))
        if params["tarball"]:
            with tarfile.open(result["tarball"], "w:gz") as tar:
                tar.add(folder, arcname=folder_name)
            os.chmod(result["tarball"], 0o600)
    except OSError as exc:
        module.fail_json(msg="cannot write the bundle to %s: %s" % (folder, exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
