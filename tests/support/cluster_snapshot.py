"""Every object the API server holds, as a set of "group/Kind namespace/name" lines.

Used to show that removal takes exactly what the site created: snapshot before the site, after
it, and after cleanup. Left out, because the API server and its controllers keep them in step on
their own: Events, Leases, Endpoints, EndpointSlices, and any object with an owner (garbage
collected with it). By hand::

    .venv/bin/python tests/support/cluster_snapshot.py KUBECONFIG [OUTPUT.json]
"""

from __future__ import annotations

import json
import sys

from kubernetes import config
from kubernetes.dynamic import DynamicClient
from kubernetes.dynamic.resource import ResourceList

IGNORED_KINDS = {"Event", "Lease", "Endpoints", "EndpointSlice", "ComponentStatus", "TokenReview",
                 "SelfSubjectReview", "SelfSubjectAccessReview", "SelfSubjectRulesReview", "SubjectAccessReview",
                 "LocalSubjectAccessReview", "Binding", "TokenRequest", "Eviction"}


def snapshot(kubeconfig, context=None, namespaces=None):
    """Every object, or with ``namespaces`` only the objects in them and those Namespaces themselves."""
    client = DynamicClient(config.new_client_from_config(config_file=kubeconfig, context=context,
                                                         persist_config=False))
    # The client keeps what it discovered in a file per API server: kinds added since (CRDs another
    # test module or this test installed on the shared control plane) are in it only once refreshed.
    client.resources.invalidate_cache()
    found, seen = set(), set()
    for resource in client.resources.search():
        if isinstance(resource, ResourceList) or "/" in resource.name or "list" not in (resource.verbs or []):
            continue
        if resource.kind in IGNORED_KINDS or (resource.group, resource.kind) in seen:
            continue
        seen.add((resource.group, resource.kind))
        for item in resource.get().items or []:
            meta = item.metadata
            if meta.ownerReferences:
                continue
            if namespaces is not None and (meta.namespace or (meta.name if resource.kind == "Namespace" else None)) \
                    not in namespaces:
                continue
            where = "%s/%s" % (meta.namespace, meta.name) if meta.namespace else meta.name
            found.add("%s/%s %s" % (resource.group or "core", resource.kind, where))
    return found


if __name__ == "__main__":
    lines = sorted(snapshot(sys.argv[1]))
    text = json.dumps(lines, indent=1)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w", encoding="utf-8") as handle:
            handle.write(text)
    else:
        print(text)
