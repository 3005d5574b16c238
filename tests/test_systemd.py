"""The service as systemd runs it: the notify protocol, and the unit's verification and sandbox."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import DaemonProcess, wait_for

pytestmark = pytest.mark.slow
UNIT = Path(__file__).parent.parent / "systemd" / "dropscribe.service"


class NotifySocket:
    """What systemd listens on: a datagram socket whose messages we collect."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(str(path))
        self.sock.settimeout(0.05)
        self.messages: list[dict[str, str]] = []

    def poll(self) -> list[dict[str, str]]:
        while True:
            try:
                data = self.sock.recv(4096).decode()
            except TimeoutError:
                return self.messages
            self.messages.append(dict(line.split("=", 1) for line in data.splitlines()))

    def seen(self, key: str) -> list[dict[str, str]]:
        return [m for m in self.poll() if key in m]


def test_notify_ready_status_watchdog_reloading_stopping(setup, tmp_path):
    """READY=1 after the first scan, WATCHDOG=1 at half WatchdogSec, STATUS with counts, and
    RELOADING/READY on SIGHUP, STOPPING on SIGTERM."""
    notify = NotifySocket(tmp_path / "notify.sock")
    daemon = DaemonProcess(
        setup, env={"NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "200000"}
    )
    try:
        wait_for(lambda: notify.seen("READY"), what="READY=1")
        assert daemon.named("daemon.started"), "READY only after the daemon started"
        wait_for(lambda: len(notify.seen("WATCHDOG")) >= 3, what="watchdog pings")
        assert "queued" in notify.seen("STATUS")[-1]["STATUS"]
        daemon.signal(signal.SIGHUP)
        wait_for(lambda: notify.seen("RELOADING"), what="RELOADING=1")
        wait_for(lambda: len(notify.seen("READY")) >= 2, what="READY=1 after reload")
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
        wait_for(lambda: notify.seen("STOPPING"), what="STOPPING=1")
    finally:
        daemon.kill()
        notify.sock.close()


UNITS = ["dropscribe.service", "dropscribe@.service"]


def installed_unit(tmp_path: Path, name: str) -> Path:
    """The unit with ExecStart pointing at the dropscribe this test suite runs."""
    exe = Path(sys.executable).parent / "dropscribe"
    assert exe.exists(), exe
    unit = tmp_path / name.replace("@", "@podcasts")
    unit.write_text(
        (UNIT.parent / name).read_text().replace("/opt/dropscribe/bin/dropscribe", str(exe))
    )
    return unit


def analyze(*args: str) -> subprocess.CompletedProcess[str]:
    if shutil.which("systemd-analyze") is None:
        pytest.fail("systemd-analyze is missing: apt-get install systemd")
    return subprocess.run(["systemd-analyze", *args], capture_output=True, text=True, check=False)


@pytest.mark.parametrize("name", UNITS)
def test_unit_passes_systemd_analyze_verify(tmp_path, name):
    """systemd-analyze verify finds nothing wrong with the unit (and the template's instance)."""
    unit = installed_unit(tmp_path, name)
    result = analyze("verify", str(unit))
    assert result.returncode == 0, result.stderr
    assert unit.name not in result.stderr, result.stderr


@pytest.mark.parametrize("name", UNITS)
def test_unit_sandbox_exposure_is_at_most_2(tmp_path, name):
    """systemd-analyze security rates the unit's exposure 2.0 or lower."""
    unit = installed_unit(tmp_path, name)
    result = analyze("security", "--offline=true", "--threshold=20", str(unit))
    assert result.returncode == 0, result.stdout[-2000:]
    assert "Overall exposure level" in result.stdout
