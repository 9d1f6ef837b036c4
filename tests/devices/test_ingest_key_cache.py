"""The ingest key cache (devices/ingest/auth.py): an expired key is looked up with the known keys
due soon, in one query, so that many devices cost one query per period, not one per key."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from devices import services
from devices.ingest import auth
from devices.keys import hash_key


@pytest.fixture
def clock(monkeypatch: Any, settings: Any) -> list[float]:
    """auth's monotonic clock, set by the test (only auth's: Django and psycopg keep theirs)."""
    settings.INGEST_KEY_CACHE_SECONDS = 10
    now = [1000.0]
    monkeypatch.setattr(auth, "time", SimpleNamespace(monotonic=lambda: now[0]))
    return now


@pytest.mark.django_db
def test_expired_keys_are_looked_up_together_in_one_query(
    owner: Any, clock: list[float], django_assert_num_queries: Any
) -> None:
    added = [services.device_add(owner=owner, name=f"gateway {i}") for i in range(5)]
    for i, (_, key) in enumerate(added):
        clock[0] = 1000.0 + i  # first seen a second apart
        with django_assert_num_queries(1):
            assert auth.sender_for(key) is not None
    clock[0] = 1010.5  # two expired; the other three expire within half a period
    with django_assert_num_queries(1):
        senders = [auth.sender_for(key) for _, key in added]
    assert [s.device_id if s else None for s in senders] == [d.pk for d, _ in added]
    clock[0] = 1020.0  # all five were refreshed at 1010.5
    with django_assert_num_queries(0):
        assert all(auth.sender_for(key) for _, key in added)


@pytest.mark.django_db
def test_a_key_refreshed_with_others_sees_its_rotation(owner: Any, clock: list[float]) -> None:
    (_, first_key), (second, second_key) = (
        services.device_add(owner=owner, name=name) for name in ("a", "b")
    )
    assert auth.sender_for(first_key) is not None
    clock[0] = 1004.0
    assert auth.sender_for(second_key) is not None
    new_key = services.device_rotate_ingest_key(device=second)
    clock[0] = 1010.5  # the first expired; the second is refreshed along with it
    assert auth.sender_for(first_key) is not None
    assert auth.sender_for(second_key) is None  # before its own period ended: never later
    assert auth.sender_for(new_key) is not None


@pytest.mark.django_db
def test_unknown_keys_are_not_looked_up_again_early_and_expired_ones_are_dropped(
    owner: Any, clock: list[float], django_assert_num_queries: Any
) -> None:
    _, key = services.device_add(owner=owner, name="a")
    made_up = [f"gro_made-up-{i}" for i in range(3)]
    for one in made_up:
        assert auth.sender_for(one) is None
    clock[0] = 1001.0
    assert auth.sender_for(key) is not None
    with django_assert_num_queries(0):  # unknown keys are cached too
        assert auth.sender_for(made_up[0]) is None
    clock[0] = 1011.5  # everything expired: one query for the known key alone
    with django_assert_num_queries(1):
        assert auth.sender_for(key) is not None
    assert not any(hash_key(one) in auth._cache for one in made_up)  # dropped on the way
