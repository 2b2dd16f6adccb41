"""Where the room socket's database work runs (docs/architecture.md, "The hot path").

Channels' `database_sync_to_async` runs every call on asgiref's single thread-sensitive thread:
in one process, every save, sync and connect of every socket queues behind the others on one
thread, and a save's database round trips cannot overlap another room's. The consumer calls the
services through `database_sync_to_async` from this module instead:

- with `DB_THREADS` > 0 (the default with PostgreSQL: 2, at most `DB_POOL_MAX` - 1, leaving one
  pooled connection to the single thread that serves pages and the session lookups), each call
  runs on a dedicated pool of that many threads. Each call is still one service call, one
  transaction; the room row lock serialises the writes of one room, so sequence numbers still
  follow commit order;
- with `DB_THREADS` = 0 (the default with SQLite, which has one writer anyway) it is Channels'
  own `database_sync_to_async`, on the single thread.

Either way Django's connections are closed before and after each call (`DatabaseSyncToAsync`):
with CONN_MAX_AGE = 0 and the PostgreSQL pool, the connection goes back to the pool when the call
returns, so no thread holds one while idle.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from channels.db import DatabaseSyncToAsync
from django.conf import settings

_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None


def db_threads() -> int:
    return int(getattr(settings, "DB_THREADS", 0))


def executor() -> ThreadPoolExecutor | None:
    """The process's database executor, created on first use; None when DB_THREADS is 0."""
    global _executor
    threads = db_threads()
    if threads <= 0:
        return None
    with _lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="quorum-db")
        return _executor


def database_sync_to_async(func: Callable[..., Any]) -> Callable[..., Awaitable[Any]]:
    """Like channels.db.database_sync_to_async, but on the database executor when there is one."""
    pool = executor()
    if pool is None:
        return DatabaseSyncToAsync(func)
    return DatabaseSyncToAsync(func, thread_sensitive=False, executor=pool)
