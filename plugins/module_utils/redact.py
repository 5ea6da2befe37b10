# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove secret values from data and text before it goes into a support bundle (pure, no I/O).

``redact(data, secret_values)`` walks mappings and lists and replaces:

* the ``data`` and ``stringData`` values of Kubernetes Secrets;
* values under keys that name a secret (password, token, secret, api key, authorization,
  credentials, private or client key, cookie, session);
* every value of a ``headers`` mapping (OTLP exporter headers carry credentials);
* the ``value`` of environment variables whose ``name`` names a secret;
* ``kubectl.kubernetes.io/last-applied-configuration`` (a full copy of the object, Secret data
  included); ``managedFields`` are dropped as noise;

and scrubs every string (``scrub``): the given secret values, ``Bearer``/``Basic`` credentials,
passwords in URLs, PEM private keys, and ``key=value`` / ``key: value`` pairs whose key names a
secret. It returns the number of replacements, so a bundle can say how much it removed.
"""

from __future__ import annotations

import re

REDACTED = "<redacted>"

SECRET_KEY = re.compile(
    r"(pass(word|wd|phrase)?$|passwd|secret|token|api[-_.]?key|apikey|authorization|credential|private[-_.]?key|"
    r"client[-_.]?key|cookie|session|^auth$|bearer)", re.IGNORECASE)
_PEM = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----.*?-----END [A-Z ]*PRIVATE KEY-----", re.DOTALL)
_AUTH = re.compile(r"\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]{4,}", re.IGNORECASE)
_URL_USERINFO = re.compile(r"(\b[a-z][a-z0-9+.-]*://)([^/\s:@]+):([^/\s@]+)@", re.IGNORECASE)
_PAIR = re.compile(
    r"""(?P<key>["']?[A-Za-z0-9_.-]*(?:password|passwd|secret|token|api[-_]?key|apikey|authorization|credential)"""
    r"""[A-Za-z0-9_.-]*["']?)(?P<sep>\s*[=:]\s*)(?P<q>["']?)(?P<value>[^\s"',;&}]+)""",
    re.IGNORECASE)
LAST_APPLIED = "kubectl.kubernetes.io/last-applied-configuration"


class _Counter(object):
    def __init__(self):
        self.count = 0


def scrub(text, secret_values=(), counter=None):
    """``text`` with secret values and credential patterns replaced by ``<redacted>``."""
    counter = counter or _Counter()
    if not isinstance(text, str) or not text:
        return text

    def sub(pattern, repl, value):
        new, n = pattern.subn(repl, value)
        counter.count += n
        return new

    for secret in sorted({s for s in secret_values or () if isinstance(s, str) and len(s) >= 3}, key=len,
                         reverse=True):
        if secret in text:
            counter.count += text.count(secret)
            text = text.replace(secret, REDACTED)
    text = sub(_PEM, REDACTED, text)
    text = sub(_AUTH, lambda m: "%s %s" % (m.group(1), REDACTED), text)
    text = sub(_URL_USERINFO, lambda m: "%s%s:%s@" % (m.group(1), m.group(2), REDACTED), text)

    def pair(match):
        if match.group("value") == REDACTED or match.group("value").startswith("<"):
            return match.group(0)
        counter.count += 1
        return "%s%s%s%s" % (match.group("key"), match.group("sep"), match.group("q"), REDACTED)
    return _PAIR.sub(pair, text)


def _is_secret_key(key):
    return isinstance(key, str) and bool(SECRET_KEY.search(key))


def _walk(value, secret_values, counter, parent_key=None):
    if isinstance(value, dict):
        out = {}
        is_secret_object = value.get("kind") == "Secret" and "apiVersion" in value
        for key, item in value.items():
            if key == "managedFields":
                continue
            if is_secret_object and key in ("data", "stringData") and isinstance(item, dict):
                out[key] = {k: REDACTED for k in item}
                counter.count += len(item)
            elif key == LAST_APPLIED:
                out[key] = REDACTED
                counter.count += 1
            elif (_is_secret_key(key) or parent_key == "headers") and not isinstance(item, (dict, list)) \
                    and item not in (None, "", True, False):
                out[key] = REDACTED
                counter.count += 1
            elif key == "headers" and isinstance(item, list):
                out[key] = [_redact_header_item(h, counter) for h in item]
            else:
                out[key] = _walk(item, secret_values, counter, key)
        # Environment variables and similar {name, value} pairs.
        if isinstance(out.get("name"), str) and "value" in out and _is_secret_key(out["name"]) \
                and out["value"] not in (None, "", REDACTED):
            out["value"] = REDACTED
            counter.count += 1
        return out
    if isinstance(value, list):
        return [_walk(item, secret_values, counter, parent_key) for item in value]
    if isinstance(value, str):
        return scrub(value, secret_values, counter)
    return value


def _redact_header_item(item, counter):
    if isinstance(item, dict) and "value" in item and item["value"] not in (None, ""):
        counter.count += 1
        return dict(item, value=REDACTED)
    return item


def redact(data, secret_values=()):
    """(a copy of ``data`` without secrets, number of values removed)."""
    counter = _Counter()
    return _walk(data, list(secret_values or ()), counter), counter.count


def redact_text(text, secret_values=()):
    """(``text`` scrubbed, number of values removed)."""
    counter = _Counter()
    return scrub(text, list(secret_values or ()), counter), counter.count
