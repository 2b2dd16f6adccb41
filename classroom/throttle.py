"""Login throttling: after LOGIN_THROTTLE["ATTEMPTS"] failed sign-ins for one username from one
address within LOGIN_THROTTLE["WINDOW_SECONDS"], further attempts for that pair are refused
without checking the password until the window has passed. A wider limit per address
(LOGIN_THROTTLE["ATTEMPTS_PER_ADDRESS"]) stops one address from trying many usernames.

Counts live in Django's cache (settings.CACHES): the local-memory cache for one process, Redis
when REDIS_URL is set, so every server process sees the same counts. Small on purpose; see
docs/security.md.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import time

from django.conf import settings
from django.core.cache import cache

logger = logging.getLogger("quorum.throttle")


def _fail_open(default):
    """A cache that is away (Redis restarting) must not lock every facilitator out: the
    attempt goes through unthrottled and a warning is logged."""

    def wrap(fn):
        @functools.wraps(fn)
        def inner(**kwargs):
            try:
                return fn(**kwargs)
            except Exception as exc:
                logger.warning("login throttle unavailable (%s): %r", fn.__name__, exc)
                return default

        return inner

    return wrap


def _limits() -> tuple[int, int, int]:
    conf = settings.LOGIN_THROTTLE
    return conf["ATTEMPTS"], conf["ATTEMPTS_PER_ADDRESS"], conf["WINDOW_SECONDS"]


def _key(*parts: str) -> str:
    digest = hashlib.sha256("\x1f".join(parts).encode("utf-8")).hexdigest()[:32]
    return f"login-throttle:{digest}"


def _keys(*, username: str, address: str) -> tuple[str, str]:
    return _key("pair", username.strip().casefold(), address), _key("address", address)


@_fail_open(0)
def login_blocked(*, username: str, address: str) -> int:
    """Seconds until this username may be tried again from this address; 0 when allowed."""
    per_pair, per_address, _window = _limits()
    pair_key, address_key = _keys(username=username, address=address)
    now = time.time()
    wait = 0
    for key, limit in ((pair_key, per_pair), (address_key, per_address)):
        entry = cache.get(key)
        if entry and entry[1] > now and entry[0] >= limit:
            wait = max(wait, int(entry[1] - now) + 1)
    return wait


@_fail_open(None)
def login_failed(*, username: str, address: str) -> None:
    """Count one failed attempt. The window starts at the first failure (a fixed window)."""
    _per_pair, _per_address, window = _limits()
    now = time.time()
    for key in _keys(username=username, address=address):
        entry = cache.get(key)
        if not entry or entry[1] <= now:
            entry = (0, now + window)
        cache.set(key, (entry[0] + 1, entry[1]), timeout=int(entry[1] - now) + 1)


@_fail_open(None)
def login_succeeded(*, username: str, address: str) -> None:
    """A correct password clears this username's count (not the address's)."""
    pair_key, _address_key = _keys(username=username, address=address)
    cache.delete(pair_key)


def login_reset(*, username: str, address: str) -> None:
    """Forget both counts (tests, and an operator unblocking someone from a shell)."""
    cache.delete_many(list(_keys(username=username, address=address)))
