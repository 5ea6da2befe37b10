"""The lock's rules (module_utils/site_lock.py): who may take the Lease, and what a waiting run is told."""

from __future__ import annotations

import datetime

import pytest

from ansible_collections.agentgateway.observability.plugins.module_utils import site_lock

NOW = datetime.datetime(2026, 12, 3, 12, 0, 0, tzinfo=datetime.timezone.utc)


def spec(holder, renewed_seconds_ago, duration=60):
    return {"holderIdentity": holder, "leaseDurationSeconds": duration,
            "renewTime": site_lock.format_time(NOW - datetime.timedelta(seconds=renewed_seconds_ago))}


@pytest.mark.parametrize("lease, verdict", [
    (None, "create"),
    (spec("me", 5), "renew"),
    (spec("me", 500), "renew"),
    (spec("other", 5), "wait"),
    (spec("other", 59), "wait"),
    (spec("other", 61), "take"),  # a killed run: its claim lapsed
    (spec("", 5), "take"),  # given back
    ({"holderIdentity": "other", "leaseDurationSeconds": 60}, "take"),  # never renewed: no claim
], ids=["none", "mine", "mine-lapsed", "other", "other-nearly", "other-lapsed", "released", "no-time"])
def test_who_takes_the_lock(lease, verdict):
    assert site_lock.decide(lease, "me", NOW) == verdict


def test_times_are_the_lease_microtime_and_parse_back():
    text = site_lock.format_time(NOW)
    assert text == "2026-12-03T12:00:00.000000Z"
    assert site_lock.parse_time(text) == NOW
    assert site_lock.parse_time("2026-12-03T12:00:00Z") == NOW, "the API server may drop the fraction"
    assert site_lock.parse_time("not a time") is None
    assert site_lock.expires_at(spec("x", 0, 90)) == NOW + datetime.timedelta(seconds=90)


def test_the_lease_body_claims_for_the_holder_and_keeps_the_first_acquire_time():
    earlier = NOW - datetime.timedelta(minutes=5)
    body = site_lock.lease_body("me", 60, NOW, {"host": "h", "user": "u"}, acquired=earlier, resource_version="7")
    assert body["metadata"]["name"] == site_lock.LOCK_NAME and body["metadata"]["resourceVersion"] == "7"
    assert body["spec"] == {"holderIdentity": "me", "leaseDurationSeconds": 60,
                            "acquireTime": site_lock.format_time(earlier), "renewTime": site_lock.format_time(NOW)}
    assert body["metadata"]["annotations"] == {"agentgateway.observability/lock-host": "h",
                                               "agentgateway.observability/lock-user": "u"}


def test_a_waiting_run_is_told_who_holds_the_lock_and_until_when():
    lease = site_lock.lease_body("ops@bastion pid 7", 60, NOW, {"host": "bastion", "user": "ops",
                                                                "started": "2026-12-03T11:58:00Z"})
    text = site_lock.describe_holder(lease)
    assert text.startswith("ops@bastion pid 7 (host bastion; user ops; started 2026-12-03T11:58:00Z; ")
    assert "lapses at 2026-12-03T12:01:00.000000Z" in text
    assert site_lock.describe_holder({"spec": {}}) == "nobody"
