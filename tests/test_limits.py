"""Throttling in the operations store (:mod:`web.limits`): known answers on a fresh store, clocks given explicitly.

Two :class:`~web.limits.Throttle` objects over two engines on one SQLite file stand for two
processes of a deployment; on PostgreSQL the same (the ``postgres_database`` fixture of conftest.py).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from twin.ops import store
from twin_web.limits import Backoff, Throttle

T0 = 1_790_000_000.0  # a fixed clock: 2026-09-21


def throttles(url: str) -> tuple[Throttle, Throttle]:
    """Two throttles of the default policy, each with its own engine on the store at ``url``."""

    def one() -> Throttle:
        return Throttle(
            store.connect(url),
            login=Backoff(5, 60.0, 3600.0, 86400.0),
            address=Backoff(20, 300.0, 3600.0, 86400.0),
            rates={"ingest": (3, 0.5)},
        )

    return one(), one()


@pytest.fixture(params=["sqlite", "postgresql"])
def pair(request, tmp_path) -> Iterator[tuple[Throttle, Throttle]]:
    if request.param == "sqlite":
        a, b = throttles(f"sqlite:///{tmp_path / 'ops.sqlite'}")
        yield a, b
        a.engine.dispose()
        b.engine.dispose()
        return
    a, b = throttles(request.getfixturevalue("postgres_database"))
    yield a, b
    a.engine.dispose()
    b.engine.dispose()


def test_the_backoff_waits_after_five_failures_and_doubles_with_each_further_one(pair):
    a, b = pair
    waits = [a.login_failed("lozere", "203.0.113.7", now=T0 + k) for k in range(5)]
    assert waits[:4] == [0, 0, 0, 0] and waits[4] == pytest.approx(60.0)
    assert b.login_wait("lozere", "203.0.113.7", now=T0 + 4) == pytest.approx(60.0)  # the other process sees it
    assert b.login_wait("lozere", "198.51.100.1", now=T0 + 4) == 0  # another address: free
    assert b.login_wait("gard", "203.0.113.7", now=T0 + 4) == 0  # another name from that address: free
    # each failure once the wait is over doubles the next wait
    t = T0 + 4 + 60
    assert a.login_wait("lozere", "203.0.113.7", now=t) == 0
    assert b.login_failed("lozere", "203.0.113.7", now=t) == pytest.approx(120.0)
    t += 120
    assert a.login_failed("lozere", "203.0.113.7", now=t) == pytest.approx(240.0)
    # ... up to the longest wait
    for _ in range(10):
        t += 3600
        last = a.login_failed("lozere", "203.0.113.7", now=t)
    assert last == pytest.approx(3600.0)


def test_a_right_password_clears_its_name_at_its_address_and_a_day_forgets(pair):
    a, b = pair
    for k in range(4):
        a.login_failed("gard", "203.0.113.8", now=T0 + k)
    b.login_succeeded("gard", "203.0.113.8")
    assert a.login_failed("gard", "203.0.113.8", now=T0 + 10) == 0  # counting again from one
    for k in range(4):
        a.login_failed("gard", "203.0.113.8", now=T0 + 11 + k)
    assert a.login_wait("gard", "203.0.113.8", now=T0 + 20) == pytest.approx(60.0 - 6)
    # a day without failure: forgotten, the next failure is the first
    assert a.login_failed("gard", "203.0.113.8", now=T0 + 20 + 86401) == 0


def test_an_address_trying_many_names_is_locked_for_every_name(pair):
    a, b = pair
    waits = [a.login_failed(f"guess-{k}", "203.0.113.9", now=T0 + k) for k in range(20)]
    assert waits[:19] == [0] * 19 and waits[19] == pytest.approx(300.0)
    assert b.login_wait("a-name-never-tried", "203.0.113.9", now=T0 + 19) == pytest.approx(300.0)
    assert b.login_wait("guess-1", "198.51.100.9", now=T0 + 19) == 0
    # a success does not clear the address: one good account must not reset an attack from there
    b.login_succeeded("guess-3", "203.0.113.9")
    assert a.login_wait("guess-3", "203.0.113.9", now=T0 + 19) == pytest.approx(300.0)


def test_the_ingest_bucket_is_shared_and_refills_at_its_rate(pair):
    a, b = pair
    assert [a.take("ingest", "user:7", now=T0) for _ in range(3)] == [0, 0, 0]
    assert b.take("ingest", "user:7", now=T0) == pytest.approx(2.0)  # empty: one token every 2 s
    assert b.take("ingest", "user:8", now=T0) == 0  # another user's bucket
    assert a.take("ingest", "user:7", now=T0 + 1) == pytest.approx(1.0)
    assert b.take("ingest", "user:7", now=T0 + 2) == 0
    assert a.take("ingest", "user:7", now=T0 + 1000) == 0  # full again, never more than 3
    assert [b.take("ingest", "user:7", now=T0 + 1000) for _ in range(3)] == [0, 0, pytest.approx(2.0)]


def test_old_keys_are_pruned(pair):
    a, _ = pair
    for k in range(30):
        a.login_failed(f"someone-{k}", f"192.0.2.{k}", now=T0)
    a.login_failed("late", "192.0.2.200", now=T0 + 2 * 86400)
    with a.engine.connect() as conn:
        left = conn.execute(sa.select(store.login_attempts.c.key)).scalars().all()
    assert sorted(left) == sorted(Throttle.keys("late", "192.0.2.200"))
