"""Where the upstream schemas are (scripts/schemas.py decides): AGW_OBS_SCHEMAS_DIR, the upstream
schemas folder beside the checkout, or .cache/schemas from `make schemas`."""

from __future__ import annotations

import importlib.util
import pathlib

REPO = pathlib.Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("agw_obs_schemas_script", REPO / "scripts" / "schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def schemas_dir():
    """The folder, or RuntimeError (scripts/schemas.py's SchemasError) with one line naming the fix."""
    return pathlib.Path(_script().locate())
