"""Django's PostgreSQL backend, with one change to its connection pool: a connection is checked
before it is handed out only if it has sat in the pool for `DB_CHECK_IDLE_SECONDS` or longer.

With `CONN_HEALTH_CHECKS` on, Django's pool runs psycopg's check (an empty query, one round trip)
every time it hands a connection out. Every socket call takes a connection and gives it back
(debate/dbthreads.py), so under load that is a second round trip for every save, on the two
threads that do all the sockets' database work. A connection given back a moment ago was working a
moment ago: checking it again buys little. One that has been idle longer (over a quiet spell, or
across a database restart) is checked as before, and a broken one is replaced without the caller
noticing. A connection that breaks in the short window without a check fails its one call the way
a connection breaking mid-call does: the socket answers `not_saved`, the browser resends
(docs/deploy.md, "Database connections").

`DB_CHECK_IDLE_SECONDS` = 0 checks on every checkout, as Django does.
"""

from __future__ import annotations

import threading
import time
import weakref

from django.conf import settings
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class IdleCheck:
    """The pool's `check` and `reset` callbacks: remember when each connection came back, and
    check only those that have been back for `idle_seconds` or longer (or never came back)."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._returned_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._lock = threading.Lock()

    def returned(self, conn) -> None:
        with self._lock:
            self._returned_at[conn] = time.monotonic()

    def check(self, conn) -> None:
        with self._lock:
            returned_at = self._returned_at.pop(conn, None)
        if returned_at is not None and time.monotonic() - returned_at < self.idle_seconds:
            return
        ConnectionPool.check_connection(conn)


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        options = self.settings_dict["OPTIONS"].get("pool")
        if (
            isinstance(options, dict)
            and self.settings_dict["CONN_HEALTH_CHECKS"]
            and self.alias not in self._connection_pools
        ):
            idle_check = IdleCheck(float(getattr(settings, "DB_CHECK_IDLE_SECONDS", 0)))
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django's pool: Django sets it per connection
            pool = ConnectionPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=idle_check.check,
                reset=idle_check.returned,
                **options,
            )
            # As in Django: threads racing here each build a pool; the first one stored wins.
            self._connection_pools.setdefault(self.alias, pool)
        return super().pool
