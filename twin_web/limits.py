"""Throttling kept in the operations store, so that every process of a deployment sees the same counts.

Two kinds:

* **Failed logins** (:meth:`Throttle.login_wait`, :meth:`Throttle.login_failed`,
  :meth:`Throttle.login_succeeded`), counted per (user name, address) and per address, each
  with a :class:`Backoff`: after ``failures`` failures the key is locked for ``wait_s``
  seconds, and each further failure doubles the wait (up to ``max_wait_s``). A key with no
  failure for ``forget_s`` starts again from nothing; a successful login clears its
  (name, address). So a wrong password typed from one address never locks the user out at
  another, and an address that tries many names is slowed down whatever names it tries.
  A locked key is refused (429 with Retry-After) before the password is looked at.
* **Request rates** (:meth:`Throttle.take`): a token bucket per (limit, who), e.g. the
  ingests of one station account: ``capacity`` at once, then ``rate`` a second.

Why our own and not Flask-Limiter: Flask-Limiter keeps its counts through the ``limits``
package, whose storages are memory (one process), Redis, Memcached, MongoDB and etcd; a
deployment of the twin shares one thing between its processes, the operations store
(an SQLite file or PostgreSQL, :mod:`twin.ops.store`). A ``limits.storage.Storage`` over SQL
would be as much code as this module, and the login rule needs what limits' strategies
(fixed, moving and sliding windows of counts) do not express: a lock-out that doubles with
each further failure and that a successful login clears. Both tables (``login_attempts``,
``rate_buckets``) are written with one upsert per key inside a transaction, which SQLite
(one writer at a time) and PostgreSQL (the row's lock) both serialise.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from twin.ops.store import login_attempts, rate_buckets

SEP = "\x1f"  # between the parts of a key (a user name cannot hold it)


@dataclass(frozen=True)
class Backoff:
    """How failures of one key are answered: the first wait after ``failures`` of them, then doubling."""

    failures: int
    wait_s: float
    max_wait_s: float = 3600.0
    forget_s: float = 86400.0

    def wait(self, failures: int) -> float:
        """Seconds the key is locked after its ``failures``-th failure (0: not locked)."""
        if failures < self.failures:
            return 0.0
        return min(self.max_wait_s, self.wait_s * 2.0 ** min(failures - self.failures, 60))


def _insert(conn: sa.Connection, table: sa.Table) -> Any:
    """The dialect's INSERT that can say ON CONFLICT (SQLite and PostgreSQL have one)."""
    from sqlalchemy.dialects import postgresql, sqlite

    if conn.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


class Throttle:
    """Failed logins and request rates in the store of ``engine`` (see the module docstring).

    Parameters
    ----------
    engine:
        The operations store (every process of a deployment opens the same one), or a function
        that opens it at first need.
    login:
        The backoff of a user name at one address.
    address:
        The backoff of one address, whatever the names it tries.
    rates:
        limit name -> (capacity, tokens gained per second) of :meth:`take`.
    clock:
        Seconds since 1970 (``time.time``); every method also takes ``now``.
    """

    def __init__(
        self,
        engine: sa.Engine | Callable[[], sa.Engine],
        *,
        login: Backoff,
        address: Backoff,
        rates: dict[str, tuple[float, float]] | None = None,
        clock: Callable[[], float] = time.time,
    ):
        self._engine = engine
        self.login = login
        self.address = address
        self.rates = dict(rates or {})
        self.clock = clock

    @property
    def engine(self) -> sa.Engine:
        if callable(self._engine):
            self._engine = self._engine()
        return self._engine

    @staticmethod
    def keys(name: str, address: str) -> tuple[str, str]:
        """The keys of a login: (the name at the address, the address)."""
        return f"name{SEP}{name}{SEP}{address}", f"address{SEP}{address}"

    # -- logins ----------------------------------------------------------------------------------
    def login_wait(self, name: str, address: str, now: float | None = None) -> float:
        """Seconds before ``name`` may try a password from ``address`` (0: now)."""
        t = self.clock() if now is None else now
        with self.engine.connect() as conn:
            until = conn.execute(
                sa.select(sa.func.max(login_attempts.c.locked_until)).where(
                    login_attempts.c.key.in_(self.keys(name, address))
                )
            ).scalar()
        return max(0.0, float(until or 0.0) - t)

    def login_failed(self, name: str, address: str, now: float | None = None) -> float:
        """Count a wrong password for ``name`` from ``address``; the seconds it must now wait (0: none)."""
        t = self.clock() if now is None else now
        pair, addr = self.keys(name, address)
        c = login_attempts.c
        with self.engine.begin() as conn:
            for key, policy in ((pair, self.login), (addr, self.address)):
                stmt = _insert(conn, login_attempts).values(key=key, failures=1, last=t, locked_until=0.0)
                stmt = stmt.on_conflict_do_update(
                    index_elements=[c.key],
                    set_={
                        "failures": sa.case((c.last < t - policy.forget_s, 1), else_=c.failures + 1),
                        "last": t,
                        "locked_until": sa.case((c.last < t - policy.forget_s, 0.0), else_=c.locked_until),
                    },
                )
                conn.execute(stmt)
                failures = int(conn.execute(sa.select(c.failures).where(c.key == key)).scalar_one())
                wait = policy.wait(failures)
                if wait:
                    conn.execute(login_attempts.update().where(c.key == key).values(locked_until=t + wait))
            oldest = t - max(self.login.forget_s, self.address.forget_s)
            conn.execute(login_attempts.delete().where(c.last < oldest, c.locked_until < t))
        return self.login_wait(name, address, now=t)

    def login_succeeded(self, name: str, address: str) -> None:
        """A right password: forget the failures of ``name`` at ``address`` (not those of the address)."""
        with self.engine.begin() as conn:
            conn.execute(login_attempts.delete().where(login_attempts.c.key == self.keys(name, address)[0]))

    # -- request rates ---------------------------------------------------------------------------
    def take(self, limit: str, who: str, now: float | None = None) -> float:
        """Take one token of ``limit`` for ``who``: 0 if allowed, else the seconds until one is there (none taken)."""
        capacity, rate = (float(v) for v in self.rates[limit])
        t = self.clock() if now is None else now
        key = f"{limit}{SEP}{who}"
        c = rate_buckets.c
        with self.engine.begin() as conn:
            grown = c.tokens + (t - c.stamp) * rate
            stmt = _insert(conn, rate_buckets).values(key=key, tokens=capacity, stamp=t)
            stmt = stmt.on_conflict_do_update(
                index_elements=[c.key],
                set_={"tokens": sa.case((grown > capacity, capacity), else_=grown), "stamp": t},
            )
            conn.execute(stmt)
            tokens = float(conn.execute(sa.select(c.tokens).where(c.key == key)).scalar_one())
            if tokens >= 1.0:
                conn.execute(rate_buckets.update().where(c.key == key).values(tokens=tokens - 1.0))
                return 0.0
        return float("inf") if rate <= 0 else (1.0 - tokens) / rate
