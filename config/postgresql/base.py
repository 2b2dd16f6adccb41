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

`DB_CHECK_IDLE_SECONDS` = 0 checks on every checkout, as Django does. Everything else (the guards,
the options, how Django takes and gives back connections) is Django's.
"""

from __future__ import annotations

import threading
import time
import weakref

from django.conf import settings
from django.db.backends.base.base import NO_DB_ALIAS
from django.db.backends.postgresql import base
from psycopg_pool import ConnectionPool


class IdleCheckedPool(ConnectionPool):
    """psycopg's pool, noting when each connection comes back (on the caller's thread, in
    putconn: a `reset` callback would send every return through the pool's worker threads) and
    checking on checkout only those back for `idle_seconds` or longer, or never given back."""

    def __init__(self, *args, idle_seconds: float, **kwargs) -> None:
        self.idle_seconds = idle_seconds
        self._returned_at: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
        self._returned_lock = threading.Lock()
        super().__init__(*args, check=self.check_if_idle, **kwargs)

    def putconn(self, conn) -> None:
        with self._returned_lock:
            self._returned_at[conn] = time.monotonic()
        super().putconn(conn)

    def check_if_idle(self, conn) -> None:
        with self._returned_lock:
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
            and self.settings_dict.get("CONN_MAX_AGE", 0) == 0  # else Django refuses, below
            and self.alias != NO_DB_ALIAS
            and self.alias not in self._connection_pools
        ):
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django's pool: Django sets it per connection
            pool = IdleCheckedPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                idle_seconds=float(getattr(settings, "DB_CHECK_IDLE_SECONDS", 0)),
                **options,
            )
            # As in Django: threads racing here each build a pool; the first one stored wins.
            self._connection_pools.setdefault(self.alias, pool)
        return super().pool
