"""Bench only: start Daphne as its `daphne` command does, with uvloop's event loop under Twisted
when QUORUM_BENCH_LOOP=uvloop (the `uvloop` patch set of bench/run.py). Daphne makes its event loop
with asyncio.new_event_loop() when daphne.server is first imported, so the loop policy has to be
set before that import; Twisted's asyncio reactor accepts a uvloop loop since Twisted 21.7.

uvloop is not a project dependency: `.venv/bin/pip install uvloop` before an experiment."""

from __future__ import annotations

import asyncio
import os

if os.environ.get("QUORUM_BENCH_LOOP") == "uvloop":
    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())

from daphne.cli import CommandLineInterface

if __name__ == "__main__":
    CommandLineInterface.entrypoint()
