# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The rules every role's settings share, written once: names, ports, images, durations, URLs, pins.

Each role has one validator (``plugins/plugin_utils/<role>_settings.py``, beside its builder) that
holds every rule ``meta/argument_specs.yml`` cannot express. The validators are written over a
``Check``: it reads the role's settings by name (a plain mapping in unit tests; in a play the
``check_settings`` action hands over the role's variables, templated when first read) and collects
one message per problem, each naming the variable, its value and the fix. Nothing here has side
effects, and nothing here has a default of its own: defaults live in the roles' ``defaults/main.yml``.

The predicates (``is_*``) are also what the deploy path and the builders use, so a rule is never
written twice.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# ---- predicates ----------------------------------------------------------------------------------
# A DNS-1123 label: what Kubernetes accepts as a namespace name, and what the collection asks of
# every name it derives others from.
_DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
# A DNS-1035 label (Service names): a DNS-1123 label that starts with a letter.
_DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
_DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
# A key of a Secret or ConfigMap.
_CONFIG_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")
# A label name (optional DNS prefix) and a label value.
_LABEL_NAME = re.compile(r"^([a-z0-9.-]+/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")
# An exact SemVer, optionally with a leading v: never a range, never "latest".
_PINNED_VERSION = re.compile(r"^v?[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$")
# A chart's name in its repository.
_CHART_NAME = re.compile(r"^[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
# Durations, as each consumer parses them.
_PROMETHEUS_DURATION = re.compile(r"^([0-9]+(ms|s|m|h|d|w|y))+$")
_GO_DURATION = re.compile(r"^([0-9]+(\.[0-9]+)?(ns|us|ms|s|m|h))+$")
_WAIT_DURATION = re.compile(r"^(?:([0-9]+)h)?(?:([0-9]+)m)?(?:([0-9]+)s)?$")
# A Kubernetes quantity as the charts' persistence sizes take it.
_QUANTITY = re.compile(r"^[0-9]+(\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|k|M|G|T|P)?$")
_HTTP_URL = re.compile(r"^https?://[^/\s]+(/\S*)?$")
# The path of a URL (an HTTP route, an API path).
URL_PATH = r"^/\S*$"
# An in-cluster Service URL: scheme, <service>.<namespace>.svc[.<cluster domain>], port, optional path.
SERVICE_URL = re.compile(
    r"^(?P<scheme>https?)://(?P<service>[a-z0-9]([-a-z0-9]*[a-z0-9])?)\.(?P<namespace>[a-z0-9]([-a-z0-9]*[a-z0-9])?)"
    r"\.svc(\.[a-z0-9.-]+)?:(?P<port>[0-9]{1,5})(?P<path>/\S*)?$")
# A registry host with an optional port and path (an air-gapped image mirror).
_REGISTRY = re.compile(r"^[A-Za-z0-9.-]+(:[0-9]+)?(/[a-z0-9._/-]+)?$")

# Kubernetes' default --service-node-port-range (kind does not change it).
NODE_PORT_RANGE = (30000, 32767)
RESOURCE_KEYS = ("requests", "limits", "claims")


def is_text(value):
    return isinstance(value, str)


def is_k8s_name(value, max_length=63):
    """A DNS-1123 label of at most ``max_length`` characters (namespaces, most names)."""
    return is_text(value) and 0 < len(value) <= max_length and bool(_DNS1123_LABEL.match(value))


def is_service_name(value, max_length=63):
    """A DNS-1035 label: a Kubernetes name that starts with a letter (Service names)."""
    return is_text(value) and 0 < len(value) <= max_length and bool(_DNS1035_LABEL.match(value))


def is_dns_subdomain(value):
    """A DNS-1123 subdomain of at most 253 characters (names of Secrets, ConfigMaps, most objects)."""
    return is_text(value) and 0 < len(value) <= 253 and bool(_DNS1123_SUBDOMAIN.match(value))


def is_config_key(value):
    return is_text(value) and bool(_CONFIG_KEY.match(value))


def is_label_name(value):
    return is_text(value) and bool(_LABEL_NAME.match(value))


def is_label_value(value):
    return bool(_LABEL_VALUE.match(str(value))) if isinstance(value, (str, int, float, bool)) else False


def as_int(value):
    """``value`` as an int (also from a string, as ``-e key=30080`` gives it), or None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def as_float(value):
    if isinstance(value, bool):
        return None
    try:
        return float(str(value).strip())
    except (TypeError, ValueError):
        return None


def is_port(value):
    port = as_int(value)
    return port is not None and 1 <= port <= 65535


def is_node_port(value):
    port = as_int(value)
    return port is not None and NODE_PORT_RANGE[0] <= port <= NODE_PORT_RANGE[1]


def is_pinned_version(value):
    return is_text(value) and bool(_PINNED_VERSION.match(value))


def is_chart_name(value):
    return is_text(value) and bool(_CHART_NAME.match(value))


def is_http_url(value):
    """scheme://host[:port][/path] with scheme http or https."""
    return is_text(value) and bool(_HTTP_URL.match(value))


def is_service_url(value):
    return is_text(value) and bool(SERVICE_URL.match(value))


def is_prometheus_duration(value):
    return is_text(value) and bool(_PROMETHEUS_DURATION.match(value))


def is_go_duration(value):
    return is_text(value) and bool(_GO_DURATION.match(value))


def wait_seconds(value):
    """'10m' -> 600, '1h30m' -> 5400; None when ``value`` is not such a duration (hours, minutes, seconds)."""
    match = _WAIT_DURATION.match(str(value)) if is_text(value) else None
    if not match or not any(match.groups()):
        return None
    hours, minutes, seconds = (int(g or 0) for g in match.groups())
    return hours * 3600 + minutes * 60 + seconds


def is_quantity(value):
    return is_text(value) and bool(_QUANTITY.match(value))


def is_registry(value):
    return is_text(value) and bool(_REGISTRY.match(value))


def resources_problem(value):
    """Why ``value`` is not a container resources mapping, or None."""
    if not isinstance(value, Mapping):
        return "is not a mapping"
    unknown = sorted(set(value) - set(RESOURCE_KEYS))
    if unknown:
        return "has keys %s besides requests, limits and claims" % ", ".join(unknown)
    return None


def is_list(value):
    """A list (not a string, not a mapping)."""
    return isinstance(value, Sequence) and not isinstance(value, (str, bytes))


# ---- collecting problems -------------------------------------------------------------------------
class Check(object):
    """The problems of one role's settings; ``settings`` maps variable names to their values.

    ``c["name"]`` reads a setting; the helpers below each check one variable against one shared
    rule and add a message that names the variable, its value and the fix.
    """

    def __init__(self, settings):
        self.settings = settings
        self.problems = []

    def __getitem__(self, name):
        return self.settings[name]

    def flag(self, name):
        """A boolean setting (the argument spec took care of its type; strings from -e are coerced)."""
        value = self.settings[name]
        if isinstance(value, str):
            return value.strip().lower() in ("true", "yes", "on", "1", "y", "t")
        return bool(value)

    def fail(self, message):
        self.problems.append(message)
        return False

    def require(self, ok, message):
        return True if ok else self.fail(message)

    # -- names ----------------------------------------------------------------------------------
    def k8s_name(self, name, what="Kubernetes name", max_length=63):
        value = self[name]
        return self.require(
            is_k8s_name(value, max_length),
            "%s=%s is not a valid %s: use lower-case letters, digits and '-', at most %d characters, "
            "starting and ending with a letter or digit." % (name, value, what, max_length))

    def release_name(self, name):
        return self.k8s_name(name, "Helm release name", 53)

    def service_name(self, name):
        value = self[name]
        return self.require(
            is_service_name(value),
            "%s=%s is not a valid Service name: use lower-case letters, digits and '-', at most 63 "
            "characters, starting with a letter." % (name, value))

    def object_name(self, name, what="object"):
        value = self[name]
        return self.require(
            is_dns_subdomain(value),
            "%s=%s is not a valid %s name: use lower-case letters, digits, '-' and '.', at most 253 "
            "characters, starting and ending with a letter or digit." % (name, value, what))

    def config_key(self, name, what="Secret key"):
        value = self[name]
        return self.require(is_config_key(value),
                            "%s=%s is not a valid %s: use letters, digits, '-', '_' and '.'." % (name, value, what))

    def matches(self, name, pattern, fix, empty_ok=False):
        """``name`` is text matching the regular expression ``pattern`` (or empty with ``empty_ok``)."""
        value = self[name]
        ok = (empty_ok and value == "") or (is_text(value) and re.match(pattern, value) is not None)
        return self.require(ok, "%s=%s %s." % (name, value, fix))

    def not_empty(self, name, hint):
        value = self[name]
        return self.require(value not in (None, "") and (not is_text(value) or value.strip() != ""),
                            "%s must not be empty: %s." % (name, hint))

    # -- numbers --------------------------------------------------------------------------------
    def port(self, name, hint=""):
        value = self[name]
        return self.require(is_port(value), "%s=%s must be a port number 1-65535%s." % (name, value, hint))

    def node_port(self, name, default_port, off_hint=""):
        value = self[name]
        return self.require(
            is_node_port(value),
            "%s=%s must lie in Kubernetes' node port range %d-%d (default %s)%s."
            % (name, value, NODE_PORT_RANGE[0], NODE_PORT_RANGE[1], default_port, off_hint))

    def number(self, name, low=None, high=None, low_open=False, what="a number", hint=""):
        """``name`` is a number in [low, high] ((low, high] with ``low_open``)."""
        value = as_float(self[name])
        ok = value is not None
        if ok and low is not None:
            ok = value > low if low_open else value >= low
        if ok and high is not None:
            ok = value <= high
        return self.require(ok, "%s=%s must be %s%s." % (name, self[name], what, hint))

    def ratio(self, name, hint=""):
        return self.number(name, 0, 1, low_open=True, what="a ratio in (0, 1]", hint=hint)

    def positive(self, name, hint=""):
        return self.number(name, 0, low_open=True, what="a positive number", hint=hint)

    def integer(self, name, low, high=None, hint=""):
        value = as_int(self[name])
        ok = value is not None and value >= low and (high is None or value <= high)
        bound = "at least %d" % low if high is None else "between %d and %d" % (low, high)
        return self.require(ok, "%s=%s must be an integer %s%s." % (name, self[name], bound, hint))

    # -- durations, sizes -----------------------------------------------------------------------
    def prometheus_duration(self, name, examples="30s, 15m, 12h, 15d or 1w"):
        value = self[name]
        return self.require(
            is_prometheus_duration(value),
            "%s=%s is not a Prometheus duration: use a number and a unit, such as %s." % (name, value, examples))

    def go_duration(self, name, hint):
        value = self[name]
        return self.require(is_go_duration(value), "%s=%s is not a Go duration: %s." % (name, value, hint))

    def wait_duration(self, name):
        value = self[name]
        return self.require(wait_seconds(value) is not None,
                            "%s=%s is not a duration: use e.g. 90s, 10m or 1h." % (name, value))

    def quantity(self, name, example):
        value = self[name]
        return self.require(is_quantity(value),
                            "%s=%s is not a Kubernetes quantity: use e.g. %s." % (name, value, example))

    def resources(self, name, example):
        value = self[name]
        why = resources_problem(value)
        return self.require(
            why is None,
            "%s must be a container resources mapping with requests and limits, e.g. %s; got %s (it %s)."
            % (name, example, value, why))

    # -- images ---------------------------------------------------------------------------------
    def image_path(self, name, example, registry_setting, tag_hint):
        """A repository path without registry, scheme or tag (the chart adds the registry)."""
        value = self[name]
        return self.require(
            is_text(value) and value != "" and "://" not in value and ":" not in value,
            "%s=%s must be a repository path without registry, scheme or tag (e.g. %s); set the registry "
            "with %s (or agw_obs_image_registry) and %s." % (name, value, example, registry_setting, tag_hint))

    def image_repository(self, name, example, tag_hint):
        """A full repository with registry host (and optional port), without scheme or tag."""
        value = self[name]
        ok = is_text(value) and value != "" and "://" not in value
        if ok and re.search(r":[^/]*$", value):  # a tag, unless it is the registry's port
            ok = bool(re.search(r"^[^/]+:[0-9]+/", value)) and not re.search(r":[^/]*$", value.split("/", 1)[1])
        return self.require(
            ok, "%s=%s must be an image repository without scheme or tag (e.g. %s); %s."
            % (name, value, example, tag_hint))

    # -- URLs -----------------------------------------------------------------------------------
    def http_url(self, name, hint, empty_ok=False):
        value = self[name]
        return self.require(
            (empty_ok and value == "") or is_http_url(value),
            "%s=%s is not an http(s) URL: %s." % (name, value, hint))

    # -- charts ---------------------------------------------------------------------------------
    def chart(self, repo, name, version, release, namespace, extra_values):
        """The chart settings of a role that installs one chart from a repository, as deploy checks them."""
        self.require(
            is_pinned_version(self[version]),
            "%s=%s is not a pinned chart version: use an exact version such as 1.2.3 (the role's default is "
            "the version this collection is tested with). Ranges and 'latest' are refused, so every run installs "
            "the same chart." % (version, self[version]))
        self.require(
            is_http_url(self[repo]),
            "%s=%s must be the http(s) URL of a chart repository (the upstream one, or your mirror)."
            % (repo, self[repo]))
        self.require(
            is_chart_name(self[name]),
            "%s=%s must be the chart's name in its repository (lower-case letters, digits, '-', '_' or '.')."
            % (name, self[name]))
        self.release_name(release)
        self.k8s_name(namespace, "Kubernetes namespace")
        self.require(isinstance(self[extra_values], Mapping),
                     "%s must be a mapping of chart values (merged last into the values), got %s."
                     % (extra_values, type(self[extra_values]).__name__))


def message(what, problems):
    """The one failure message of ``problems`` (``what``: "Role tempo", "Shared settings")."""
    if len(problems) == 1:
        return "%s: %s" % (what, problems[0])
    return "%s: %d settings need a fix: %s" % (
        what, len(problems), " ".join("(%d) %s" % (i + 1, p) for i, p in enumerate(problems)))
