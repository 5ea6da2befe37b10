"""Validate rendered objects against the pinned upstream schemas (read, never copied).

``locate_schemas`` finds the folder (AGW_OBS_SCHEMAS_DIR, the upstream schemas folder beside the
checkout, or .cache/schemas from `make schemas`: scripts/schemas.py). Every helper below takes
that folder as ``schemas_dir``.

CRD files carry an OpenAPI v3 schema per version. ``crd_validator`` turns it into a JSON Schema
validator that behaves like the API server with strict field validation: unknown fields are
errors (except under ``x-kubernetes-preserve-unknown-fields``), ``nullable`` allows null, and
``x-kubernetes-int-or-string`` accepts both.
"""

from __future__ import annotations

import copy
import functools
import importlib.util
import json
import pathlib

import jsonschema
import yaml

REPO = pathlib.Path(__file__).resolve().parents[2]


def _schemas_script():
    """scripts/schemas.py, the one place that knows the pins and where the files are."""
    spec = importlib.util.spec_from_file_location("agw_obs_schemas_script", REPO / "scripts" / "schemas.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCHEMAS_SCRIPT = _schemas_script()
SchemasError = SCHEMAS_SCRIPT.SchemasError


def locate_schemas(**kwargs):
    """The folder holding the pinned upstream schemas, or SchemasError naming the fix."""
    return pathlib.Path(SCHEMAS_SCRIPT.locate(**kwargs))


def _strict(node):
    """Rewrite an openAPIV3Schema node in place into a strict JSON Schema."""
    if isinstance(node, list):
        for item in node:
            _strict(item)
        return node
    if not isinstance(node, dict):
        return node
    if node.get("x-kubernetes-int-or-string"):
        node.pop("type", None)
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("nullable"):
        if "type" in node:
            node["type"] = [node["type"], "null"]
    if node.get("type") == "object" or "properties" in node:
        if "properties" in node and not node.get("x-kubernetes-preserve-unknown-fields") \
                and "additionalProperties" not in node:
            node["additionalProperties"] = False
    for key in ("properties", "patternProperties", "definitions"):
        for child in (node.get(key) or {}).values():
            _strict(child)
    for key in ("items", "additionalProperties", "not"):
        if isinstance(node.get(key), (dict, list)):
            _strict(node[key])
    for key in ("allOf", "anyOf", "oneOf"):
        for child in node.get(key) or []:
            _strict(child)
    return node


@functools.lru_cache(maxsize=None)
def _crd_index(schemas_dir):
    """{(group/version, Kind): (openAPIV3Schema, file name)} for every CRD file in the schemas folder."""
    index = {}
    for path in sorted(pathlib.Path(schemas_dir).rglob("*.yaml")):
        # libyaml's loader: the CRD files are megabytes of YAML, ten times slower in pure Python
        for doc in yaml.load_all(path.read_text(encoding="utf-8"), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)):
            if not doc or doc.get("kind") != "CustomResourceDefinition":
                continue
            spec = doc["spec"]
            for version in spec["versions"]:
                schema = (version.get("schema") or {}).get("openAPIV3Schema")
                if schema:
                    key = ("%s/%s" % (spec["group"], version["name"]), spec["names"]["kind"])
                    index[key] = (schema, path.name)
    return index


@functools.lru_cache(maxsize=None)
def crd_validator(schemas_dir, api_version, kind):
    """A jsonschema validator for one served CRD version, or KeyError if the schema is not there."""
    schema, _name = _crd_index(str(schemas_dir))[(api_version, kind)]
    schema = _strict(copy.deepcopy(schema))
    return jsonschema.Draft7Validator(schema)


def crd_errors(schemas_dir, obj):
    """Sorted error messages (with the JSON path) for one object against its CRD schema."""
    validator = crd_validator(str(schemas_dir), obj["apiVersion"], obj["kind"])
    return sorted(
        "%s: %s" % ("/".join(str(p) for p in err.absolute_path) or "<root>", err.message)
        for err in validator.iter_errors(obj)
    )


def known_crd_kinds(schemas_dir):
    return sorted(_crd_index(str(schemas_dir)))


@functools.lru_cache(maxsize=None)
def proxy_config_validator(schemas_dir, version="v1.4.1"):
    """The agentgateway proxy config schema (JSON Schema 2020-12); rawConfig must pass it."""
    path = pathlib.Path(schemas_dir, "agentgateway", "config-schema-%s.json" % version)
    schema = json.loads(path.read_text(encoding="utf-8"))
    return jsonschema.Draft202012Validator(schema)


def proxy_config_errors(schemas_dir, raw_config, version="v1.4.1"):
    validator = proxy_config_validator(str(schemas_dir), version)
    return sorted(
        "%s: %s" % ("/".join(str(p) for p in err.absolute_path) or "<root>", err.message)
        for err in validator.iter_errors(raw_config)
    )


def chart_values_errors(schemas_dir, chart_file, values):
    """Errors of Helm values against a chart's values.schema.json (e.g. prometheus-29.27.0)."""
    path = pathlib.Path(schemas_dir, "charts", "%s.values.schema.json" % chart_file)
    schema = json.loads(path.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    return sorted(
        "%s: %s" % ("/".join(str(p) for p in err.absolute_path) or "<root>", err.message)
        for err in cls(schema).iter_errors(values)
    )
