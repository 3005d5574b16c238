"""dropscribe_backlog_files: the work waiting, for an autoscaler (KEDA) to scale on, read
from the real daemon's /metrics: SQLite's ledger and this host's queue, and a shared
PostgreSQL ledger's files under way on other hosts."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI
from test_hosts import Host, running

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = [pytest.mark.slow, pytest.mark.timeout(180)]


def metrics_url(daemon: DaemonProcess) -> str:
    daemon.wait_event("metrics.listening")
    return str(daemon.named("metrics.listening")[0]["url"])


def backlog(url: str) -> float | None:
    """The daemon's dropscribe_backlog_files now (None: not exported)."""
    found = re.search(
        r"^dropscribe_backlog_files (\S+)$", httpx.get(url, timeout=5).text, re.MULTILINE
    )
    return float(found.group(1)) if found else None


def test_the_backlog_counts_the_file_under_way_and_those_queued_then_falls_to_zero(setup):
    """One upload slot, held at the server, and three files dropped: the backlog is 3 (one
    under way in the ledger, two waiting for the slot); once the server answers it is 0
    and the ledger has three done."""
    setup.data["workers"] = 1
    setup.data["endpoints"]["local"]["max_concurrency"] = 1
    setup.data["metrics"] = {"port": 0}
    setup.api.hold()
    daemon = DaemonProcess(setup)
    try:
        url = metrics_url(daemon)
        assert backlog(url) == 0
        for n in range(3):
            make_wav(setup.inbox / f"held-{n}.wav", freq=300.0 + 50 * n)
        assert setup.api.wait_waiting(1)
        wait_for(lambda: backlog(url) == 3, what="a backlog of 3")
        setup.api.release()
        daemon.wait_event("file.done", count=3)
        wait_for(lambda: backlog(url) == 0, what="a backlog of 0")
        assert 'dropscribe_files{state="done"} 3.0' in httpx.get(url, timeout=5).text
    finally:
        setup.api.release()
        daemon.signal(2)
        assert daemon.wait() == 0


def test_a_shared_ledger_counts_another_hosts_file_under_way(tmp_path: Path, pg_url):
    """Two hosts on one PostgreSQL ledger, each its own inbox: while host a's upload is
    held, host b (nothing of its own) exports a backlog of 1 from the ledger; then 0."""
    with FakeAPI() as api:  # any key: each host sends its own
        shared_backlog(tmp_path, api, pg_url)


def shared_backlog(tmp_path: Path, api: FakeAPI, pg_url: str) -> None:
    hosts = []
    for name in ("a", "b"):
        inbox = tmp_path / f"inbox-{name}"
        inbox.mkdir()
        host = Host(tmp_path, name, inbox, api, pg_url, metrics={"port": 0})
        host.data["inboxes"] = [{"path": str(inbox), "name": f"calls-{name}"}]
        hosts.append(host)
    api.hold()
    try:
        with running(hosts) as (a, b):
            url_a, url_b = metrics_url(a), metrics_url(b)
            assert backlog(url_b) == 0
            make_wav(tmp_path / "inbox-a" / "call.wav")
            assert api.wait_waiting(1)
            wait_for(lambda: backlog(url_b) == 1, what="host b's backlog of 1")
            # host a's own queue gauge is refreshed by its main loop's next turn: until then
            # the file may count twice (queued and under way), the upper estimate KEDA's max takes
            wait_for(lambda: backlog(url_a) == 1, what="host a's backlog of 1")
            api.release()
            a.wait_event("file.done")
            wait_for(lambda: backlog(url_b) == 0, what="host b's backlog of 0")
    finally:
        api.release()
