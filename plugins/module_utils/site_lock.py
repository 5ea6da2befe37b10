# -*- coding: utf-8 -*-
# Copyright: contributors to agentgateway.observability
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""One run at a time: the rules of the site's Lease (coordination.k8s.io/v1), without I/O.

An apply run holds a Lease in the monitoring namespace while it changes the cluster, as
Kubernetes' own leader election does: ``holderIdentity`` names the run, ``renewTime`` +
``leaseDurationSeconds`` say until when the claim holds. A run that is killed stops renewing,
so its claim expires by itself and the next run takes it over. Every write carries the
resourceVersion it read, so two runs that try at the same moment cannot both win.
"""

from __future__ import annotations

import datetime

LOCK_NAME = "agentgateway-observability-lock"
ANNOTATION_PREFIX = "agentgateway.observability/lock-"
MICROTIME = "%Y-%m-%dT%H:%M:%S.%fZ"


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def format_time(moment):
    return moment.astimezone(datetime.timezone.utc).strftime(MICROTIME)


def parse_time(value):
    """A Lease time (RFC 3339, with or without microseconds) as an aware datetime, or None."""
    if isinstance(value, datetime.datetime):
        return value if value.tzinfo else value.replace(tzinfo=datetime.timezone.utc)
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        return datetime.datetime.fromisoformat(text)
    except ValueError:
        return None


def expires_at(spec):
    """When the claim in ``spec`` (a Lease's spec as a dict) lapses, or None when nobody holds it."""
    if not spec or not spec.get("holderIdentity"):
        return None
    renewed = parse_time(spec.get("renewTime")) or parse_time(spec.get("acquireTime"))
    if renewed is None:
        return None
    return renewed + datetime.timedelta(seconds=int(spec.get("leaseDurationSeconds") or 0))


def decide(spec, me, now):
    """What a run called ``me`` does with the Lease whose spec is ``spec`` (None: no Lease yet).

    ``create``: no Lease; ``renew``: ``me`` holds it; ``take``: free, or its holder's claim has
    lapsed (a killed run); ``wait``: another run holds it until ``expires_at(spec)``.
    """
    if spec is None:
        return "create"
    holder = spec.get("holderIdentity") or ""
    if holder == me:
        return "renew"
    until = expires_at(spec)
    if not holder or until is None or until <= now:
        return "take"
    return "wait"


def lease_body(me, seconds, now, annotations, acquired=None, resource_version=None):
    """The Lease object a run writes to claim (or renew) the lock."""
    metadata = {
        "name": LOCK_NAME,
        "labels": {"app.kubernetes.io/managed-by": "agentgateway.observability",
                   "app.kubernetes.io/part-of": "agentgateway-observability"},
        "annotations": {ANNOTATION_PREFIX + key: str(value) for key, value in sorted(annotations.items())},
    }
    if resource_version:
        metadata["resourceVersion"] = resource_version
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": {
            "holderIdentity": me,
            "leaseDurationSeconds": int(seconds),
            "acquireTime": format_time(acquired or now),
            "renewTime": format_time(now),
        },
    }


def describe_holder(lease):
    """'<holder> (host h, user u, started t; claim lapses at x)' for messages, from a Lease dict."""
    spec = lease.get("spec") or {}
    notes = (lease.get("metadata") or {}).get("annotations") or {}
    parts = ["%s %s" % (key, notes[ANNOTATION_PREFIX + key]) for key in ("host", "user", "started")
             if notes.get(ANNOTATION_PREFIX + key)]
    until = expires_at(spec)
    if until is not None:
        parts.append("its claim lapses at %s unless renewed" % format_time(until))
    return "%s (%s)" % (spec.get("holderIdentity") or "nobody", "; ".join(parts)) if parts \
        else spec.get("holderIdentity") or "nobody"
