"""Start Daphne on uvloop's event loop: `python -m config.serve` followed by Daphne's own
arguments (`make run`, deploy/quorum@.service, the benchmark and the tests' server processes).

Daphne runs Twisted on an asyncio loop that it makes with `asyncio.new_event_loop()` when
`daphne.server` is first imported, which the `daphne` command does before any of Quorum's code
runs. This entry point sets uvloop's loop policy first and then hands over to Daphne's command
line, so every argument and option is Daphne's. Twisted's asyncio reactor takes a uvloop loop
(since Twisted 21.7). At the same load a process spends about a tenth of a core less, most of it
in the loop's own work around every frame it reads and writes (bench/RESULTS.md, eighth round).

`QUORUM_UVLOOP=0` keeps asyncio's own loop, as the plain `daphne` command would.
"""

from __future__ import annotations

import asyncio
import os
import sys


def install_loop() -> str:
    """Set the loop policy Daphne's loop will be made with; returns which ("uvloop" or
    "asyncio"). Must run before `daphne.server` is imported."""
    if "daphne.server" in sys.modules:
        raise RuntimeError("daphne.server is already imported: its loop exists already")
    if os.environ.get("QUORUM_UVLOOP", "1").strip().lower() in ("0", "false", "no", "off"):
        return "asyncio"
    try:
        import uvloop
    except ImportError:  # a platform without uvloop (Windows): asyncio's loop works the same
        print("config.serve: uvloop is not installed; asyncio's event loop", file=sys.stderr)
        return "asyncio"
    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())
    return "uvloop"


def main() -> None:
    install_loop()
    from daphne.cli import CommandLineInterface

    CommandLineInterface.entrypoint()


if __name__ == "__main__":
    main()
