"""config.asgi tunes the garbage collector once the application is built: start-up's objects are
frozen out of the collector's generations and the young generation is collected less often. Run
in a fresh interpreter, as a server process imports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

BASE = Path(__file__).resolve().parents[2]
PROBE = (
    "import gc, json; before = gc.get_freeze_count(); import config.asgi as a; "
    "print(json.dumps([before, gc.get_freeze_count(), gc.get_threshold(), a.GC_THRESHOLDS]))"
)


def test_loading_the_application_freezes_start_up_and_sets_the_thresholds():
    out = subprocess.run(  # noqa: S603 (fixed argv)
        [sys.executable, "-c", PROBE],
        cwd=BASE,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings"},
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    before, frozen, thresholds, configured = json.loads(out.stdout.strip().splitlines()[-1])
    assert before == 0
    assert frozen > 10_000  # Django and the project's modules, not a handful of objects
    assert thresholds == configured == [10_000, 50, 50]
