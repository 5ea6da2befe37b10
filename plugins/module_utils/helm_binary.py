# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Find the helm binary and check that kubernetes.core.helm can drive it."""

from __future__ import annotations

import os
import re

# kubernetes.core 6.2 (ansible 12.3.0) drives Helm 3; Helm 4 support came with kubernetes.core 6.4.
# 3.10 is the oldest Helm 3 that every option kubernetes.core.helm passes for us accepts.
HELM_MIN = (3, 10, 0)
HELM_MAX_EXCLUSIVE = (4, 0, 0)


class HelmError(Exception):
    def __init__(self, cause, message):
        super().__init__(message)
        self.cause = cause
        self.message = message


def _text(version):
    return ".".join(str(part) for part in version)


def parse_version(text):
    """'v3.17.2+gcc0bbbd' -> (3, 17, 2); None when it is not a version."""
    match = re.match(r"^v?(\d+)\.(\d+)\.(\d+)", (text or "").strip())
    return tuple(int(part) for part in match.groups()) if match else None


def check_helm(module, binary):
    """(path, version text) of ``binary``, or a ``HelmError`` with cause helm_missing / helm_version."""
    if os.sep in binary:
        path = binary if os.access(binary, os.X_OK) and os.path.isfile(binary) else None
    else:
        path = module.get_bin_path(binary, required=False)
    if not path:
        raise HelmError("helm_missing", "helm binary %r not found%s" % (
            binary, "" if os.sep in binary else " on PATH (%s)" % os.environ.get("PATH", "")))
    rc, out, err = module.run_command([path, "version", "--template", "{{.Version}}"])
    version = parse_version(out)
    if rc != 0 or version is None:
        raise HelmError("helm_version", "%s version failed (rc=%s): %s" % (path, rc, (err or out).strip()[:300]))
    if not HELM_MIN <= version < HELM_MAX_EXCLUSIVE:
        raise HelmError("helm_version", "%s is Helm %s; kubernetes.core 6.2 needs Helm >= %s and < %s"
                        % (path, _text(version), _text(HELM_MIN), _text(HELM_MAX_EXCLUSIVE)))
    return path, _text(version)
