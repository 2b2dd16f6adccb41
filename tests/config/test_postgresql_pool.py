"""config.postgresql: the pool checks a connection before handing it out only when it has sat in
the pool for DB_CHECK_IDLE_SECONDS or longer. Each test builds a pool of one connection on a real
PostgreSQL database, kills that connection's server process from another connection (as a
database restart would), and sees whether the next checkout was checked: a checked one is
replaced by a working connection, an unchecked one fails its first query."""

from __future__ import annotations

import itertools
import time

import pytest
from django.db import OperationalError, connection, connections

pytestmark = pytest.mark.django_db(transaction=True)

_aliases = itertools.count()


@pytest.fixture
def one_connection_pool():
    """A wrapper of this project's backend on the test database, with a pool of one connection;
    the pool is closed afterwards."""
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's")
    from config.postgresql.base import DatabaseWrapper, IdleCheckedPool

    wrappers = []

    def make(*, health_checks: bool = True):
        settings_dict = {**connection.settings_dict}
        settings_dict["OPTIONS"] = {
            **settings_dict["OPTIONS"],
            "pool": {"min_size": 1, "max_size": 1, "timeout": 3},
        }
        settings_dict["CONN_HEALTH_CHECKS"] = health_checks
        wrapper = DatabaseWrapper(settings_dict, alias=f"pool_test_{next(_aliases)}")
        wrappers.append(wrapper)
        assert isinstance(wrapper.pool, IdleCheckedPool) is health_checks
        return wrapper

    yield make
    for wrapper in wrappers:
        wrapper.close()
        wrapper.close_pool()


def _server_pid(wrapper) -> int:
    with wrapper.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _give_back_and_kill(wrapper) -> int:
    """Use the pool's connection once, hand it back, and end its server process."""
    pid = _server_pid(wrapper)
    wrapper.close()  # with the pool: back to the pool, where it now waits
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True
    return pid


def test_a_connection_given_back_just_now_is_handed_out_unchecked(one_connection_pool, settings):
    settings.DB_CHECK_IDLE_SECONDS = 60
    wrapper = one_connection_pool()
    _give_back_and_kill(wrapper)
    # No check query: the dead connection reaches the caller, whose call fails (a socket's save
    # answers not_saved and is resent, tests/faults/test_database_cut.py).
    with pytest.raises(OperationalError):
        _server_pid(wrapper)
    wrapper.close()
    # The pool has replaced the broken connection: the next call works.
    assert _server_pid(wrapper) > 0


def test_a_connection_idle_long_enough_is_checked_and_replaced(one_connection_pool, settings):
    settings.DB_CHECK_IDLE_SECONDS = 0.05
    wrapper = one_connection_pool()
    dead = _give_back_and_kill(wrapper)
    time.sleep(1)
    assert _server_pid(wrapper) not in (0, dead)  # the caller never saw the dead one


def test_zero_checks_every_checkout(one_connection_pool, settings):
    settings.DB_CHECK_IDLE_SECONDS = 0
    wrapper = one_connection_pool()
    dead = _give_back_and_kill(wrapper)
    assert _server_pid(wrapper) not in (0, dead)


def test_health_checks_off_never_check(one_connection_pool, settings):
    settings.DB_CHECK_IDLE_SECONDS = 0
    wrapper = one_connection_pool(health_checks=False)
    _give_back_and_kill(wrapper)
    time.sleep(0.1)
    with pytest.raises(OperationalError):
        _server_pid(wrapper)


def test_the_project_uses_this_backend_with_postgresql():
    if connection.vendor != "postgresql":
        pytest.skip("the connection pool is PostgreSQL's")
    from config.postgresql.base import DatabaseWrapper

    assert isinstance(connections["default"], DatabaseWrapper)
    assert connections["default"].pool is not None
