"""Through the real ``dropscribe`` process: chat steps reuse kept-alive connections across
a file's steps and across files; and a chat endpoint whose name the resolver never answers
fails its steps at connect_timeout, naming the host, instead of pinning the step thread
(the daemon runs in a mount namespace whose /etc/resolv.conf names a silent UDP server on
127.0.0.0/8: the real getaddrinfo, nothing patched)."""

from __future__ import annotations

import os
import random
import shutil
import signal
import socket
import subprocess
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import DaemonProcess, make_wav
from fakechat import FakeChat
from test_chat33 import with_steps
from test_deadline14 import Hostile

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path


KEY = "llm-key-0123"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(api_key=KEY) as server:
        yield server


def test_chat_steps_reuse_connections_across_steps_and_files(setup, chat):
    """Two files' summaries and translations (four steps or more) are sent over fewer
    connections than requests: kept-alive ones are taken again."""
    with Hostile(relay=httpx.URL(chat.base_url).port) as front:
        with_steps(setup, chat)
        setup.data["endpoints"]["llm"]["base_url"] = front.base_url
        make_wav(setup.inbox / "a.wav")
        make_wav(setup.inbox / "b.wav", seconds=0.6)
        daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
        try:
            daemon.wait_event("step.written", 4, timeout=60)
        finally:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    assert not daemon.named("step.failed")
    assert len(front.served) >= 4
    assert front.connections < len(front.served)


@pytest.fixture
def silent_resolver(tmp_path: Path) -> Iterator[Path]:
    """A resolv.conf naming a UDP server on 127.0.0.0/8 that takes queries and never
    answers, with the C library told to keep trying for minutes."""
    probe = (
        subprocess.run(["unshare", "--mount", "true"], capture_output=True, check=False)
        if shutil.which("unshare")
        else None
    )
    if probe is None or probe.returncode != 0 or os.geteuid() != 0:
        pytest.skip("needs root and unshare --mount (a private /etc/resolv.conf)")
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as silent:
        for _ in range(20):
            address = f"127.53.{random.randrange(1, 255)}.{random.randrange(1, 255)}"
            try:
                silent.bind((address, 53))
                break
            except OSError:
                continue
        resolv = tmp_path / "resolv.conf"
        resolv.write_text(f"nameserver {address}\noptions timeout:30 attempts:5\n")
        yield resolv


def test_a_chat_endpoint_whose_name_never_resolves_fails_at_connect_timeout(
    setup, chat, silent_resolver
):
    """A chat step to a host the resolver never answers for fails within connect_timeout
    with an error naming the host and the setting; the daemon stops cleanly."""
    with_steps(setup, chat)
    port = httpx.URL(chat.base_url).port
    setup.data["endpoints"]["llm"].update(
        {
            "base_url": f"http://chat.stalls.test:{port}/v1",
            "connect_timeout": 1,
            "timeout": 5,
            "max_attempts": 1,
        }
    )
    daemon = DaemonProcess(
        setup, env={"LLM_KEY": KEY}, mounts={"/etc/resolv.conf": silent_resolver}
    )
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("step.failed", timeout=20)
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    failed = daemon.named("step.failed")[0]
    assert (
        "the name 'chat.stalls.test' did not resolve within 1 s (connect_timeout)"
        in (failed["error"])
    )
    assert f"http://chat.stalls.test:{port}/v1" in failed["error"]
    assert not chat.requests
