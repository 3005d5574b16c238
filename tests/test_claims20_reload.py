"""A reload that changes a key only a restart applies says so: ``metrics:`` (the server is
started once, at start) is named by ``config.needs_restart`` like ``workers``, and the
running values are kept, instead of a ``config.reloaded`` that quietly changed nothing."""

from __future__ import annotations

import signal

from conftest import DaemonProcess, make_wav


def test_a_reload_that_adds_metrics_names_it_as_needing_a_restart(setup):
    """metrics: added to the config of a running daemon, then SIGHUP: config.needs_restart
    names metrics, no server starts (no metrics.listening), and files are still done."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started")
        setup.data["metrics"] = {"port": 0}
        setup.write()
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reloaded")
        [warned] = daemon.named("config.needs_restart")
        assert warned["keys"] == ["metrics"]
        assert warned["level"] == "warning"
        make_wav(setup.inbox / "after.wav")
        daemon.wait_event("file.done")
        assert not daemon.named("metrics.listening")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
