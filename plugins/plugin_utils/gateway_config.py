# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The gateway's telemetry settings: build them from structured input and validate them.

agentgateway's proxy rejects any configuration key it does not know (its Rust types deny unknown
fields), so a wrong key means a gateway that does not start. Everything here runs on the
controller before anything is rendered or applied, and reports *every* problem at once, each
with the path of the offending key and the fix.

Two outputs, both from one input (see ``build``):

* ``raw_config``: the proxy configuration carried by ``spec.rawConfig`` of the (Enterprise)
  AgentgatewayParameters: ``config.logging``, ``config.metrics.fields.add`` (metric labels) and
  ``config.modelCatalog`` (model prices, which enable ``agentgateway_gen_ai_client_cost_usd_total``
  and ``llm.cost.*``), plus any extra raw configuration the user supplies.
* ``frontend``: ``spec.frontend`` of the (Enterprise) AgentgatewayPolicy attached to the Gateway:
  ``tracing`` to Tempo, ``accessLog`` (fields, optional OTLP export to Loki) and, optionally,
  ``metrics`` (the same labels; a frontend metrics policy replaces the global label set).

The allow-lists below are this collection's own record of the agentgateway v1.4.1 proxy config
(checked against its published config schema in the tests; the schema is not shipped).
"""

from __future__ import annotations

import math
import re
from decimal import Decimal, InvalidOperation

__all__ = ["TelemetryConfigError", "build", "check_raw_config", "cel_problems", "reference_grants", "RATE_KEYS"]


class TelemetryConfigError(ValueError):
    """Invalid telemetry input; ``errors`` lists every problem (each names the key and the fix)."""

    def __init__(self, errors):
        self.errors = list(errors)
        super(TelemetryConfigError, self).__init__(
            "%d problem(s) in the gateway telemetry config:\n- %s" % (len(self.errors), "\n- ".join(self.errors))
        )


# ---- CEL checks ----------------------------------------------------------------------------

_COST_TRAPS = {
    "totalCost": "llm.cost.total",
    "inputCost": "llm.cost.input",
    "outputCost": "llm.cost.output",
}
_COST_RE = re.compile(r"\bllm\s*\.\s*(totalCost|inputCost|outputCost)\b")


def _strip_cel_strings(expr):
    """``expr`` with the contents of every CEL string literal blanked out (quotes kept).

    Handles '...', "...", triple-quoted and raw (r/R prefix) literals and backslash escapes, so
    a ``//`` inside a string (``"http://x"``) is not mistaken for a comment.
    """
    out = []
    i, n = 0, len(expr)
    while i < n:
        ch = expr[i]
        if ch in "'\"":
            raw = i > 0 and expr[i - 1] in "rR" and (i < 2 or not (expr[i - 2].isalnum() or expr[i - 2] == "_"))
            quote = expr[i:i + 3] if expr[i:i + 3] in ("'''", '"""') else ch
            out.append(quote)
            i += len(quote)
            while i < n and expr[i:i + len(quote)] != quote:
                if expr[i] == "\\" and not raw:
                    i += 2
                    out.append("  ")
                    continue
                out.append(" ")
                i += 1
            out.append(quote)
            i += len(quote)
            continue
        out.append(ch)
        i += 1
    return "".join(out)[:n]


def cel_problems(path, expr):
    """Problems of one CEL expression at ``path`` (a list of messages, empty when fine)."""
    if not isinstance(expr, str):
        return ["%s: a CEL expression must be a string, got %r" % (path, expr)]
    problems = []
    if not expr.strip():
        problems.append("%s: the CEL expression is empty; remove the entry or write an expression" % path)
        return problems
    code = _strip_cel_strings(expr)
    pos = code.find("//")
    if pos >= 0:
        left, right = expr[:pos].strip(), expr[pos + 2:].strip()
        fix = "default(%s, %s)" % (left, right) if left and right else "default(<expr>, <fallback>)"
        problems.append(
            "%s: %r uses '//' as a default operator, but '//' starts a comment in CEL (everything after "
            "it is ignored); write %s" % (path, expr, fix)
        )
    for match in _COST_RE.finditer(code):
        problems.append(
            "%s: %r uses llm.%s, which does not exist; use %s (needs a model price catalog, "
            "gateway_observability_model_prices)" % (path, expr, match.group(1), _COST_TRAPS[match.group(1)])
        )
    return problems


def _sampling_problems(path, value):
    """Sampling: a boolean, a number in [0, 1], or a CEL expression (a numeric string is a number)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        number = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text in ("true", "false"):
            return []
        try:
            number = float(text)
        except ValueError:
            return cel_problems(path, value)
    else:
        return ["%s: sampling must be true/false, a number between 0 and 1, or a CEL expression; got %r"
                % (path, value)]
    if math.isnan(number) or number < 0 or number > 1:
        return ["%s: sampling %r is outside [0, 1]; use a fraction such as 0.1 (10 %%) or 1.0 (everything)"
                % (path, value)]
    return []


def _sampling_expression(value):
    """A sampling value as the string the Kubernetes policy expects (a CEL expression)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(float(value))
    return str(value).strip()


# ---- allow-lists of the proxy config (agentgateway v1.4.1) -----------------------------------
# Node kinds: a dict is an object with exactly these keys; the strings below are leaf kinds.
STR, BOOL, INT, ANY, STRS, CEL, CEL_MAP, SAMPLING, CATALOG, LEVEL, FORMAT, PROTOCOL, STR_MAP = (
    "str", "bool", "int", "any", "list of str", "CEL", "map of CEL", "sampling", "catalog", "level",
    "format", "protocol", "map of str",
)

_FIELDS = {"add": CEL_MAP, "remove": STRS}
_DATABASE = {"url": STR, "maxConnections": INT}

RAW_CONFIG_KEYS = {
    "enableIpv6": BOOL,
    "dns": {"lookupFamily": STR, "edns0": BOOL},
    "localXdsPath": STR,
    "modelCatalog": CATALOG,
    "database": _DATABASE,
    "storage": {"mode": STR},
    "caAddress": STR,
    "caAuthToken": STR,
    "xdsAddress": STR,
    "xdsAuthToken": STR,
    "namespace": STR,
    "gateway": STR,
    "trustDomain": STR,
    "additionalTrustDomains": STR,
    "skipValidateTrustDomain": BOOL,
    "serviceAccount": STR,
    "clusterId": STR,
    "network": STR,
    "adminAddr": STR,
    "standardAttributes": {"user": STR, "group": STR},
    "statsAddr": STR,
    "readinessAddr": STR,
    "session": {"key": STR},
    "mcp": {"sessionTtl": STR},
    "customFunctions": STR,
    "connectionTerminationDeadline": STR,
    "connectionMinTerminationDeadline": STR,
    "workerThreads": ANY,
    "tracing": {
        "otlpEndpoint": STR,
        "headers": STR_MAP,
        "otlpProtocol": PROTOCOL,
        "fields": _FIELDS,
        "randomSampling": SAMPLING,
        "clientSampling": SAMPLING,
        "path": STR,
    },
    "logging": {"filter": CEL, "fields": _FIELDS, "level": LEVEL, "format": FORMAT, "database": _DATABASE},
    "metrics": {"remove": STRS, "fields": {"add": CEL_MAP}},
    "backend": {
        "keepalives": {"enabled": BOOL, "time": STR, "interval": STR, "retries": INT},
        "connectTimeout": STR,
        "poolIdleTimeout": STR,
        "poolMaxSize": INT,
    },
    "hbone": {
        "windowSize": INT,
        "connectionWindowSize": INT,
        "frameSize": INT,
        "poolMaxStreamsPerConn": INT,
        "poolUnusedReleaseTimeout": STR,
    },
}

# Top-level sections the proxy knows, but which on Kubernetes come from Gateway API and policy
# resources (xDS); carrying them in rawConfig would fight the controller.
KUBERNETES_MANAGED_SECTIONS = {
    "binds": "listeners come from the Gateway resource",
    "gateways": "listeners come from the Gateway resource",
    "routes": "routes come from HTTPRoute resources",
    "tcpRoutes": "routes come from TCPRoute resources",
    "routeGroups": "routes come from HTTPRoute resources",
    "backends": "backends come from AgentgatewayBackend resources",
    "services": "services come from Kubernetes",
    "workloads": "workloads come from Kubernetes",
    "policies": "policies come from AgentgatewayPolicy resources",
    "frontendPolicies": "frontend policies come from the AgentgatewayPolicy this role attaches to the Gateway "
                        "(gateway_observability_tracing_*, gateway_observability_access_log_*)",
    "llm": "LLM routing comes from AgentgatewayBackend resources",
    "mcp": "MCP routing comes from AgentgatewayBackend resources",
    "ui": "the UI is not served by Kubernetes gateways",
}

# The seed tutorial's inventions, with what to do instead.
TRAPS = {
    ("config", "metrics", "enabled"):
        "metrics are always on (served on statsAddr :15020, /metrics); there is no 'enabled' switch, remove it",
    ("config", "metrics", "prefix"):
        "the metric prefix is fixed ('agentgateway_'); there is no 'prefix' setting, remove it",
    ("config", "metrics", "tags"):
        "there is no 'tags'; extra metric labels go under config.metrics.fields.add "
        "(role variable gateway_observability_metric_labels: {label: CEL expression})",
    ("config", "metrics", "customMetrics"):
        "agentgateway has no custom metrics; add labels with config.metrics.fields.add "
        "(gateway_observability_metric_labels) and get cost from agentgateway_gen_ai_client_cost_usd_total "
        "by configuring a model price catalog (gateway_observability_model_prices)",
    ("config", "tracing", "collector"):
        "there is no tracing.collector (nor collector.endpoint); the role sends traces to Tempo with "
        "gateway_observability_tracing_* (in a raw config the key is config.tracing.otlpEndpoint)",
}

RATE_KEYS = ("input", "output", "cacheRead", "cacheWrite", "reasoning", "inputAudio", "outputAudio")
_URLISH = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def _p(path):
    return ".".join(str(part) for part in path) or "<root>"


def _type_name(value):
    return type(value).__name__


class _Checker(object):
    def __init__(self):
        self.errors = []

    def add(self, message):
        if message not in self.errors:
            self.errors.append(message)

    # A subtree under a key the proxy does not know: still point out the CEL traps in it.
    def scan_unknown(self, path, value):
        if isinstance(value, dict):
            for key, child in value.items():
                self.scan_unknown(path + (key,), child)
        elif isinstance(value, list):
            for index, child in enumerate(value):
                self.scan_unknown(path + (index,), child)
        elif isinstance(value, str) and not _URLISH.match(value.strip()):
            for problem in cel_problems(_p(path), value):
                if "is empty" not in problem:
                    self.add(problem)

    def check(self, path, spec, value):
        where = _p(path)
        if isinstance(spec, dict):
            if not isinstance(value, dict):
                self.add("%s: must be a mapping with keys %s, got %s"
                         % (where, ", ".join(sorted(spec)), _type_name(value)))
                return
            for key, child in value.items():
                if key in spec:
                    self.check(path + (key,), spec[key], child)
                    continue
                trap = TRAPS.get(tuple(path[-2:]) + (key,))
                if trap:
                    self.add("%s: %s" % (_p(path + (key,)), trap))
                else:
                    self.add(
                        "%s: unknown key %r; the agentgateway proxy rejects unknown keys and would not start. "
                        "Known keys here: %s" % (_p(path + (key,)), key, ", ".join(sorted(spec)))
                    )
                self.scan_unknown(path + (key,), child)
            return
        if value is None:
            return
        if spec == ANY:
            return
        if spec == STR or (spec == LEVEL and isinstance(value, str)):
            if not isinstance(value, str):
                self.add("%s: must be a string, got %r" % (where, value))
            return
        if spec == LEVEL:
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                self.add("%s: must be a log level string such as info, or a list of strings" % where)
            return
        if spec == BOOL:
            if not isinstance(value, bool):
                self.add("%s: must be true or false, got %r" % (where, value))
            return
        if spec == INT:
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                self.add("%s: must be a non-negative integer, got %r" % (where, value))
            return
        if spec == STRS:
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                self.add("%s: must be a list of strings, got %r" % (where, value))
            return
        if spec == STR_MAP:
            if not (isinstance(value, dict) and all(isinstance(v, str) for v in value.values())):
                self.add("%s: must be a mapping of strings" % where)
            return
        if spec == FORMAT:
            if value not in ("json", "text"):
                self.add("%s: must be json or text, got %r" % (where, value))
            return
        if spec == PROTOCOL:
            if value not in ("grpc", "http"):
                self.add("%s: must be grpc or http, got %r" % (where, value))
            return
        if spec == CEL:
            for problem in cel_problems(where, value):
                self.add(problem)
            return
        if spec == CEL_MAP:
            if not isinstance(value, dict):
                self.add("%s: must be a mapping of name to CEL expression, got %s" % (where, _type_name(value)))
                return
            for key, expr in value.items():
                for problem in cel_problems(_p(path + (key,)), expr):
                    self.add(problem)
            return
        if spec == SAMPLING:
            for problem in _sampling_problems(where, value):
                self.add(problem)
            return
        if spec == CATALOG:
            self.check_catalog_sources(path, value)
            return
        raise AssertionError("unknown spec %r" % (spec,))  # pragma: no cover

    def check_catalog_sources(self, path, value):
        if not isinstance(value, list):
            self.add("%s: must be a list of sources ({file: path}, {inline: catalog})" % _p(path))
            return
        for index, source in enumerate(value):
            where = path + (index,)
            if not isinstance(source, dict) or len(source) != 1 or not set(source) <= {"file", "inline"}:
                self.add("%s: a model catalog source is exactly one of {file: <path>} or {inline: <catalog>}"
                         % _p(where))
                continue
            if "file" in source:
                self.check(where + ("file",), STR, source["file"])
            elif not isinstance(source["inline"], str):
                self.check_catalog(where + ("inline",), source["inline"])

    def check_catalog(self, path, catalog):
        if not isinstance(catalog, dict) or not set(catalog) <= {"providers"}:
            self.add("%s: a model catalog is {providers: {<provider>: {models: {<model>: {rates: {...}}}}}}"
                     % _p(path))
            return
        providers = catalog.get("providers") or {}
        if not isinstance(providers, dict):
            self.add("%s: must map provider names (such as openai) to {models: ...}" % _p(path + ("providers",)))
            return
        for provider, pdata in providers.items():
            ppath = path + ("providers", provider)
            if not isinstance(pdata, dict) or not set(pdata) <= {"models"} or not isinstance(
                    pdata.get("models", {}), dict):
                self.add("%s: must be {models: {<model id>: {rates: {...}}}}" % _p(ppath))
                continue
            for model, mdata in (pdata.get("models") or {}).items():
                mpath = ppath + ("models", model)
                if not isinstance(mdata, dict):
                    self.add("%s: must be {rates: {...}, tiers: [...]}" % _p(mpath))
                    continue
                for key in mdata:
                    if key not in ("rates", "tiers"):
                        self.add("%s: unknown key %r; a model has rates and tiers" % (_p(mpath + (key,)), key))
                self.check_rates(mpath + ("rates",), mdata.get("rates") or {})
                tiers = mdata.get("tiers") or []
                if not isinstance(tiers, list):
                    self.add("%s: must be a list of {contextOver, rates}" % _p(mpath + ("tiers",)))
                    continue
                previous = None
                for index, tier in enumerate(tiers):
                    tpath = mpath + ("tiers", index)
                    if not isinstance(tier, dict) or set(tier) != {"contextOver", "rates"}:
                        self.add("%s: a tier is {contextOver: <tokens>, rates: {...}}" % _p(tpath))
                        continue
                    over = tier["contextOver"]
                    if isinstance(over, bool) or not isinstance(over, int) or over < 0:
                        self.add("%s: must be a non-negative integer" % _p(tpath + ("contextOver",)))
                    elif previous is not None and over <= previous:
                        self.add("%s: tier thresholds must increase strictly" % _p(tpath + ("contextOver",)))
                    else:
                        previous = over
                    self.check_rates(tpath + ("rates",), tier["rates"])

    def check_rates(self, path, rates):
        if not isinstance(rates, dict):
            self.add("%s: must be a mapping of %s to prices" % (_p(path), ", ".join(RATE_KEYS)))
            return
        for key, price in rates.items():
            if key not in RATE_KEYS:
                self.add("%s: unknown rate %r; rates are %s (USD per 1M tokens)"
                         % (_p(path + (key,)), key, ", ".join(RATE_KEYS)))
                continue
            if price is not None:
                problem = _money_problem(price)
                if problem:
                    self.add("%s: %s" % (_p(path + (key,)), problem))


def _money_problem(price):
    """The proxy reads prices as decimal strings: >= 0, at most 6 fractional digits."""
    if not isinstance(price, str):
        return "a price must be a decimal string such as \"0.15\" (USD per 1M tokens), got %r" % (price,)
    try:
        value = Decimal(price)
    except InvalidOperation:
        return "%r is not a decimal number; write a price such as \"0.15\" (USD per 1M tokens)" % price
    if not value.is_finite() or value < 0:
        return "%r: a price must be a finite number >= 0" % price
    if -value.as_tuple().exponent > 6:
        return "%r has more than 6 fractional digits, which the proxy refuses" % price
    return None


def _money(price):
    """A price given as a number or a string, as the decimal string the proxy expects."""
    if isinstance(price, bool):
        return price  # left for _money_problem to reject
    if isinstance(price, (int, float)):
        text = format(Decimal(repr(price)), "f") if isinstance(price, float) else str(price)
        return text
    return price


def check_raw_config(raw, path=()):
    """Every problem of a raw proxy config (a list of messages)."""
    checker = _Checker()
    _check_raw(checker, raw, path)
    return checker.errors


def _check_raw(checker, raw, path):
    if raw is None:
        return
    if not isinstance(raw, dict):
        checker.add("%s: the raw config must be a mapping such as {config: {...}}" % _p(path))
        return
    for key, value in raw.items():
        if key == "config":
            checker.check(path + ("config",), RAW_CONFIG_KEYS, value)
        elif key in KUBERNETES_MANAGED_SECTIONS:
            checker.add("%s: not accepted in rawConfig on Kubernetes: %s" % (_p(path + (key,)),
                                                                             KUBERNETES_MANAGED_SECTIONS[key]))
            checker.scan_unknown(path + (key,), value)
        else:
            checker.add("%s: unknown top-level key %r; the proxy config has 'config' (and, outside Kubernetes, "
                        "binds, frontendPolicies, ...); put settings under config" % (_p(path + (key,)), key))
            checker.scan_unknown(path + (key,), value)


# ---- the structured input ------------------------------------------------------------------

_LABEL_NAME = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
# Labels agentgateway already puts on its HTTP and GenAI metrics; a custom label must not reuse them.
BUILTIN_METRIC_LABELS = frozenset({
    "backend", "protocol", "method", "status", "reason", "bind", "gateway", "listener", "route", "route_rule",
    "gen_ai_operation_name", "gen_ai_system", "gen_ai_request_model", "gen_ai_response_model",
    "gen_ai_token_type", "le", "quantile",
})
MAX_POLICY_ATTRIBUTES = 16  # AgentgatewayPolicy spec.frontend.metrics.attributes.add maxItems

INPUT_KEYS = {
    "metrics": ("labels", "remove", "in_policy"),
    "tracing": ("enabled", "service", "protocol", "path", "random_sampling", "client_sampling", "attributes",
                "resources", "filter"),
    "logging": ("level", "format"),
    "access_log": ("fields", "remove", "filter", "otlp"),
    "otlp": ("enabled", "service", "protocol", "path"),
    "service": ("name", "namespace", "port"),
}
TOP_KEYS = ("metrics", "tracing", "logging", "access_log", "model_prices", "extra_raw_config")


def _section(errors, spec, name, keys, where):
    value = spec.get(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append("%s: must be a mapping, got %s" % (where, _type_name(value)))
        return {}
    for key in value:
        if key not in keys:
            errors.append("%s.%s: unknown setting; known: %s" % (where, key, ", ".join(keys)))
    return value


def _service_ref(errors, value, where):
    if not isinstance(value, dict):
        errors.append("%s: must be {name, namespace, port}" % where)
        return None
    for key in value:
        if key not in INPUT_KEYS["service"]:
            errors.append("%s.%s: unknown setting; known: name, namespace, port" % (where, key))
    name, namespace, port = value.get("name"), value.get("namespace"), value.get("port")
    ok = True
    for key, item in (("name", name), ("namespace", namespace)):
        if not isinstance(item, str) or not _DNS_LABEL.match(item):
            errors.append("%s.%s=%r: must be a Kubernetes name (lower-case letters, digits, '-')" % (where, key, item))
            ok = False
    if isinstance(port, str) and port.isdigit():
        port = int(port)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        errors.append("%s.port=%r: must be a port number 1-65535" % (where, port))
        ok = False
    return {"name": name, "namespace": namespace, "port": port} if ok else None


def _cel_map(errors, value, where, name_re=None, name_hint=""):
    if value is None:
        return {}
    if not isinstance(value, dict):
        errors.append("%s: must be a mapping of name to CEL expression, got %s" % (where, _type_name(value)))
        return {}
    result = {}
    for key, expr in value.items():
        key = str(key)
        if not key or len(key) > 256 or (name_re and not name_re.match(key)):
            errors.append("%s: %r is not a valid name%s" % (where, key, name_hint))
        errors.extend(cel_problems("%s.%s" % (where, key), expr))
        if isinstance(expr, str) and len(expr) > 16384:
            errors.append("%s.%s: the expression is longer than 16384 characters" % (where, key))
        result[key] = expr
    return result


def _str_list(errors, value, where):
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
        errors.append("%s: must be a list of non-empty strings" % where)
        return []
    return list(value)


def _protocol(errors, value, where, default="grpc"):
    value = default if value in (None, "") else str(value).lower()
    if value not in ("grpc", "http"):
        errors.append("%s=%r: must be grpc (OTLP/gRPC, Tempo port 4317) or http (OTLP/HTTP, port 4318)"
                      % (where, value))
        return default
    return value


def _path(errors, value, where, protocol):
    if value in (None, ""):
        return None
    if not isinstance(value, str) or not value.startswith("/"):
        errors.append("%s=%r: must start with /" % (where, value))
        return None
    if protocol != "http":
        errors.append("%s=%r: a path only applies to protocol http; remove it or set the protocol to http"
                      % (where, value))
        return None
    return value


def _catalog(errors, prices, where):
    """{provider: {model: {input: "0.15", ...} or {rates: {...}, tiers: [...]}}} -> proxy catalog."""
    if prices in (None, {}):
        return None
    if not isinstance(prices, dict):
        errors.append("%s: must map provider -> model -> prices, e.g. {openai: {gpt-4o-mini: {input: \"0.15\", "
                      "output: \"0.60\"}}}" % where)
        return None
    providers = {}
    for provider, models in prices.items():
        if not isinstance(models, dict) or not models:
            errors.append("%s.%s: must map model ids to prices" % (where, provider))
            continue
        out_models = {}
        for model, entry in models.items():
            mwhere = "%s.%s.%s" % (where, provider, model)
            if not isinstance(entry, dict) or not entry:
                errors.append("%s: must be prices such as {input: \"0.15\", output: \"0.60\"} (USD per 1M tokens)"
                              % mwhere)
                continue
            if set(entry) <= set(RATE_KEYS):
                entry = {"rates": entry}
            elif not set(entry) <= {"rates", "tiers"}:
                errors.append("%s: use either rates directly (%s) or {rates: {...}, tiers: [...]}; unknown: %s"
                              % (mwhere, ", ".join(RATE_KEYS),
                                 ", ".join(sorted(str(k) for k in set(entry) - set(RATE_KEYS) - {"rates", "tiers"}))))
                continue
            model_out = {}
            if isinstance(entry.get("rates"), dict):
                model_out["rates"] = {k: _money(v) for k, v in entry["rates"].items()}
            elif "rates" in entry:
                model_out["rates"] = entry["rates"]
            if "tiers" in entry:
                tiers = entry["tiers"]
                if isinstance(tiers, list):
                    model_out["tiers"] = [
                        dict(t, rates={k: _money(v) for k, v in t["rates"].items()})
                        if isinstance(t, dict) and isinstance(t.get("rates"), dict) else t
                        for t in tiers
                    ]
                else:
                    model_out["tiers"] = tiers
            out_models[str(model)] = model_out
        providers[str(provider)] = {"models": out_models}
    catalog = {"providers": providers}
    checker = _Checker()
    checker.check_catalog(("model_prices",), catalog)
    for message in checker.errors:
        errors.append(message.replace("model_prices.providers.", where + ".").replace(".models.", ".")
                      .replace(".rates.", "."))
    return catalog


def _deep_merge(base, overlay):
    result = dict(base)
    for key, value in overlay.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _deep_merge(result[key], value)
        else:
            result[key] = value
    return result


def _attributes(mapping):
    return [{"name": k, "expression": v} for k, v in mapping.items()]


def build(spec, names=None):
    """Build and validate the gateway telemetry config.

    ``spec`` (all keys optional)::

        metrics:    {labels: {label: CEL}, remove: [metric names], in_policy: bool}
        tracing:    {enabled, service: {name, namespace, port}, protocol: grpc|http, path,
                     random_sampling, client_sampling, attributes: {k: CEL}, resources: {k: CEL}, filter}
        logging:    {level: info, format: json|text}
        access_log: {fields: {k: CEL}, remove: [...], filter, otlp: {enabled, service, protocol, path}}
        model_prices: {provider: {model: {input: "0.15", output: "0.60", ...}}}
        extra_raw_config: {config: {...}}    # merged last into rawConfig, checked key by key

    ``names`` maps the sections to the user-facing variable names used in messages
    (e.g. {"tracing": "gateway_observability_tracing"}).

    Returns ``{"raw_config": {...}, "frontend": {...}, "logging": {"level", "format"}}``; raises
    TelemetryConfigError listing every problem.
    """
    names = dict(names or {})

    def name(section):
        return names.get(section, section)

    errors = []
    if not isinstance(spec, dict):
        raise TelemetryConfigError(["the telemetry spec must be a mapping, got %s" % _type_name(spec)])
    for key in spec:
        if key not in TOP_KEYS:
            errors.append("%s: unknown section; known: %s" % (key, ", ".join(TOP_KEYS)))

    # metrics
    metrics = _section(errors, spec, "metrics", INPUT_KEYS["metrics"], name("metrics"))
    labels = _cel_map(errors, metrics.get("labels"), name("metric_labels"), _LABEL_NAME,
                      " (Prometheus label names: letters, digits and _, not starting with a digit)")
    for label in labels:
        if label in BUILTIN_METRIC_LABELS or label.startswith("__"):
            errors.append("%s.%s: the gateway already sets a label with this name; pick another (e.g. llm_%s)"
                          % (name("metric_labels"), label, label))
    in_policy = bool(metrics.get("in_policy", False))
    if in_policy and len(labels) > MAX_POLICY_ATTRIBUTES:
        errors.append("%s: %d labels, but a policy carries at most %d; drop some"
                      % (name("metric_labels"), len(labels), MAX_POLICY_ATTRIBUTES))
    metrics_remove = _str_list(errors, metrics.get("remove"), name("metrics_remove"))

    # logging
    logging = _section(errors, spec, "logging", INPUT_KEYS["logging"], name("logging"))
    level = logging.get("level") or "info"
    if not isinstance(level, str) or not re.match(r"^[A-Za-z0-9_:=,.-]+$", level):
        errors.append("%s=%r: use a RUST_LOG style level such as info, debug or warn,rmcp=error"
                      % (name("log_level"), level))
    fmt = logging.get("format") or "json"
    if fmt not in ("json", "text"):
        errors.append("%s=%r: must be json or text" % (name("log_format"), fmt))

    # tracing
    tracing = _section(errors, spec, "tracing", INPUT_KEYS["tracing"], name("tracing"))
    frontend = {}
    if tracing.get("enabled", True):
        protocol = _protocol(errors, tracing.get("protocol"), name("tracing_protocol"))
        target = _service_ref(errors, tracing.get("service"), name("tracing_service"))
        out = {"backendRef": target, "protocol": protocol.upper()}
        path = _path(errors, tracing.get("path"), name("tracing_path"), protocol)
        if path:
            out["path"] = path
        for key, out_key in (("random_sampling", "randomSampling"), ("client_sampling", "clientSampling")):
            value = tracing.get(key)
            if value is None or value == "":
                continue
            problems = _sampling_problems("%s_%s" % (name("tracing"), key), value)
            errors.extend(problems)
            out[out_key] = _sampling_expression(value)
        attributes = _cel_map(errors, tracing.get("attributes"), name("tracing_attributes"))
        if attributes:
            out["attributes"] = {"add": _attributes(attributes)}
        resources = _cel_map(errors, tracing.get("resources"), name("tracing_resources"))
        if resources:
            out["resources"] = _attributes(resources)
        if tracing.get("filter"):
            errors.extend(cel_problems(name("tracing_filter"), tracing["filter"]))
            out["filter"] = tracing["filter"]
        frontend["tracing"] = out

    # access log
    access = _section(errors, spec, "access_log", INPUT_KEYS["access_log"], name("access_log"))
    fields = _cel_map(errors, access.get("fields"), name("access_log_fields"))
    remove = _str_list(errors, access.get("remove"), name("access_log_remove"))
    if len(remove) > 32:
        errors.append("%s: at most 32 entries" % name("access_log_remove"))
    log_out = {}
    if fields or remove:
        log_out["attributes"] = {}
        if fields:
            log_out["attributes"]["add"] = _attributes(fields)
        if remove:
            log_out["attributes"]["remove"] = remove
    if access.get("filter"):
        errors.extend(cel_problems(name("access_log_filter"), access["filter"]))
        log_out["filter"] = access["filter"]
    otlp = access.get("otlp") or {}
    if otlp and not isinstance(otlp, dict):
        errors.append("%s: must be a mapping" % name("access_log_otlp"))
        otlp = {}
    for key in otlp:
        if key not in INPUT_KEYS["otlp"]:
            errors.append("%s.%s: unknown setting; known: %s" % (name("access_log_otlp"), key,
                                                                 ", ".join(INPUT_KEYS["otlp"])))
    if otlp.get("enabled"):
        protocol = _protocol(errors, otlp.get("protocol"), name("access_log_otlp") + ".protocol", default="http")
        target = _service_ref(errors, otlp.get("service"), name("access_log_otlp") + ".service")
        otlp_out = {"backendRef": target, "protocol": protocol.upper()}
        path = _path(errors, otlp.get("path"), name("access_log_otlp") + ".path", protocol)
        if path:
            otlp_out["path"] = path
        log_out["otlp"] = otlp_out
    if log_out:
        frontend["accessLog"] = log_out

    if in_policy and labels:
        frontend["metrics"] = {"attributes": {"add": _attributes(labels)}}

    # rawConfig
    config = {"logging": {"level": level, "format": fmt}}
    if labels or metrics_remove:
        config["metrics"] = {}
        if labels:
            config["metrics"]["fields"] = {"add": dict(labels)}
        if metrics_remove:
            config["metrics"]["remove"] = metrics_remove
    catalog = _catalog(errors, spec.get("model_prices"), name("model_prices"))
    if catalog and catalog["providers"]:
        config["modelCatalog"] = [{"inline": catalog}]
    raw = {"config": config}

    extra = spec.get("extra_raw_config")
    if extra:
        extra_errors = check_raw_config(extra, path=(name("extra_raw_config"),))
        errors.extend(extra_errors)
        if isinstance(extra, dict) and not extra_errors:
            extra_config = extra.get("config") or {}
            if "tracing" in extra_config and "tracing" in frontend:
                errors.append(
                    "%s.config.tracing: tracing is already configured by the role through the policy "
                    "(the proxy refuses both forms at once); set %s.enabled to false to use config.tracing"
                    % (name("extra_raw_config"), name("tracing")))
            stats = extra_config.get("statsAddr")
            if isinstance(stats, str) and not stats.endswith(":15020"):
                errors.append(
                    "%s.config.statsAddr=%r: the metrics Service and the Prometheus scrape job expect port 15020; "
                    "keep the port (e.g. 0.0.0.0:15020) or remove the key" % (name("extra_raw_config"), stats))
            raw = _deep_merge(raw, extra)

    # Last line of defence: the finished rawConfig must pass the same allow-lists.
    if not errors:
        errors.extend(check_raw_config(raw, path=("rawConfig",)))
    if errors:
        raise TelemetryConfigError(errors)
    return {"raw_config": raw, "frontend": frontend, "logging": {"level": level, "format": fmt}}


def reference_grants(targets, name, from_group, from_kind, from_namespace, labels=None):
    """One ReferenceGrant per target namespace, letting the policy reference those Services.

    ``targets`` is a list of {namespace, name} (Services the policy's backendRefs point at).
    """
    by_namespace = {}
    for target in targets or []:
        if not isinstance(target, dict) or not target.get("namespace") or not target.get("name"):
            raise TelemetryConfigError(["a ReferenceGrant target needs namespace and name, got %r" % (target,)])
        names = by_namespace.setdefault(target["namespace"], [])
        if target["name"] not in names:
            names.append(target["name"])
    grants = []
    for namespace in sorted(by_namespace):
        grants.append({
            "apiVersion": "gateway.networking.k8s.io/v1beta1",
            "kind": "ReferenceGrant",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "spec": {
                "from": [{"group": from_group, "kind": from_kind, "namespace": from_namespace}],
                "to": [{"group": "", "kind": "Service", "name": service} for service in sorted(by_namespace[namespace])],
            },
        })
    return grants
