"""attack15: a chat endpoint's name with many addresses, each dropping connections (a
listening socket on 127.0.0.0/8 whose backlog is full), pinned the step's request
``connect_timeout`` an address, far past its ``timeout``. Through the real dropscribe
process, in a mount namespace whose /etc/hosts names the addresses (the real
getaddrinfo and connect, nothing patched)."""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import shutil
import signal
import socket
import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conftest import DaemonProcess, make_wav, patience
from fakechat import FakeChat
from test_chat33 import with_steps

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


KEY = "llm-key-0123"
ADDRESSES = 24  # 24 s at connect_timeout 1: the deadline is 3
TIMEOUT = 3


@pytest.fixture
def holes(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """An /etc/hosts naming ``holes.test`` at ADDRESSES loopback addresses, each with a
    listening socket on one port whose backlog is full (a new connection's SYN is
    dropped: connect waits its whole timeout), and that port."""
    probe = (
        subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0 or os.geteuid() != 0:
        pytest.skip("needs root and unshare --mount (a private /etc/hosts)")
    with contextlib.ExitStack() as stack:
        port = 0
        names = ["127.0.0.1 localhost"]
        for n in range(ADDRESSES):
            address = f"127.77.0.{n + 2}"
            hole = stack.enter_context(socket.socket())
            hole.bind((address, port))
            hole.listen(0)
            port = hole.getsockname()[1]
            for _ in range(3):  # the backlog (0: one, and a spare) filled
                filler = stack.enter_context(socket.socket())
                filler.settimeout(0.0)  # non-blocking
                with contextlib.suppress(BlockingIOError):
                    filler.connect((address, port))
            names.append(f"{address} holes.test")
        hosts = tmp_path / "hosts"
        hosts.write_text("\n".join(names) + "\n")
        yield hosts, port


def moment(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["timestamp"]).timestamp()


def test_a_name_with_many_dropping_addresses_fails_the_step_at_its_timeout(setup, holes):
    """The chat step's request ends within its ``timeout`` (3 s), not ``connect_timeout``
    (1 s) for each of the name's 24 addresses, the error naming the URL and the deadline."""
    hosts, port = holes
    with FakeChat(api_key=KEY) as chat:
        with_steps(setup, chat)
        setup.data["defaults"]["translate_to"] = []
        setup.data["endpoints"]["llm"].update(
            {
                "base_url": f"http://holes.test:{port}/v1",
                "connect_timeout": 1,
                "timeout": TIMEOUT,
                "max_attempts": 1,
            }
        )
        daemon = DaemonProcess(setup, env={"LLM_KEY": KEY}, mounts={"/etc/hosts": hosts})
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("step.failed", timeout=ADDRESSES + patience(30))
        finally:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait(timeout=30) == 0
    [started] = daemon.named("step.started")[:1]
    failed = daemon.named("step.failed")[0]
    took = moment(failed) - moment(started)
    assert took < TIMEOUT + patience(2), f"the step's request took {took:.1f} s"
    assert f"http://holes.test:{port}/v1" in failed["error"]
    assert f"within {TIMEOUT} s" in failed["error"]  # the deadline's, not connect_timeout's
    assert httpx.URL(chat.base_url).port != port
