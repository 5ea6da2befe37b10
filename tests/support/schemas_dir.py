"""Where the upstream schemas are: the upstream schemas folder beside the checkout, or AGW_OBS_SCHEMAS_DIR."""

from __future__ import annotations

import os
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def schemas_dir():
    path = pathlib.Path(os.environ.get("AGW_OBS_SCHEMAS_DIR") or REPO.parent / "shared" / "schemas")
    if not path.is_dir():
        raise RuntimeError("upstream schemas not found at %s (set AGW_OBS_SCHEMAS_DIR)" % path)
    return path
