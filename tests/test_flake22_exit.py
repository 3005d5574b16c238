"""flake22, through the real ``dropscribe`` process: once stopped (``daemon.stopped``) the
daemon leaves without the interpreter's teardown, as its worker processes do (flakes19).
Tearing its 769 modules down took 2 to 4.7 s after ``daemon.stopped`` at load 20, past
the README's promise (exit by ``shutdown_grace`` plus 1 s); grace18's and pggrace18's stops
took 4 to 7.4 s of the 9 s their tests allow. An exit handler that holds the process (here
one that sleeps, set by a ``sitecustomize`` of the test's) stands in for that teardown."""

from __future__ import annotations

import os
import signal
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup

pytestmark = pytest.mark.slow

GRACE = 1.0  # shutdown_grace
SLOW_EXIT = "import atexit, time\natexit.register(time.sleep, 120)\n"


def test_a_stopped_daemon_exits_within_the_grace_whatever_the_teardown_would_take(
    setup: Setup, tmp_path: Path
) -> None:
    """SIGTERM to an idle daemon whose interpreter would take two minutes to tear down:
    it exits 0 within shutdown_grace + 1 s (times patience), daemon.stopped said."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(SLOW_EXIT)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    setup.data["shutdown_grace"] = GRACE
    daemon = DaemonProcess(setup, env={"PYTHONPATH": path})
    try:
        daemon.wait_event("daemon.started", timeout=60)
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(timeout=GRACE + 1)
    finally:
        daemon.kill()
    assert code == 0, daemon
    assert daemon.named("daemon.stopped")
