"""leftovers21: with ``processes: N`` and a PostgreSQL ledger, each worker process said
``ledger.host_name_in_use`` of its own daemon's main process and siblings (two with
``processes: auto`` on 2 cores), and a daemon restarted after a kill of its own
predecessor: a person reading the journal thought two hosts shared a name. Now the
warning comes only of another daemon (another host, or another state_dir), once.
Real ``dropscribe run`` processes, a real server."""

from __future__ import annotations

from typing import TYPE_CHECKING

import psycopg
import pytest

import pg
from conftest import DaemonProcess, wait_for
from test_hooks20_owed import shared_api
from test_hosts import Host, running

if TYPE_CHECKING:
    from pathlib import Path

    from fakeapi import FakeAPI

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]
__all__ = ["shared_api"]  # the fake API for every host's key, as a fixture here


def runs(url: str) -> list[str]:
    """The runs the hosts table holds, oldest first."""
    with psycopg.connect(url, password=pg.PASSWORD, autocommit=True) as db:
        return [str(run) for (run,) in db.execute("SELECT run FROM hosts ORDER BY started")]


def host(tmp_path: Path, name: str, api: FakeAPI, url: str) -> Host:
    """A daemon of two worker processes named "shared" whatever its folder's ``name``,
    its leases kept a minute (a killed one's runs stay alive meanwhile)."""
    inbox = tmp_path / "inbox"
    inbox.mkdir(exist_ok=True)
    made = Host(tmp_path, name, inbox, api, url)
    made.data["processes"] = 2
    made.data["ledger"].update(host="shared", lease_seconds=60)
    return made


def test_a_daemons_own_processes_and_restart_say_no_host_name_in_use(
    tmp_path: Path, shared_api: FakeAPI, pg_url: str
) -> None:
    """processes: 2: the main process and both workers beat under one host name, and none
    warns; killed (-9) and started again on the same state_dir while the dead runs still
    look alive, the new daemon's three do not warn either."""
    one = host(tmp_path, "a", shared_api, pg_url)
    first = DaemonProcess(one)  # type: ignore[arg-type]
    try:
        first.wait_event("daemon.started", timeout=30)
        wait_for(lambda: len(runs(pg_url)) == 3, timeout=30, what="three runs beating")
        dead = set(runs(pg_url))
    finally:
        first.kill()
    assert first.named("ledger.host_name_in_use") == []
    with running([one]) as (again,):
        wait_for(lambda: len(set(runs(pg_url)) - dead) == 3, timeout=30, what="three new runs")
        assert set(runs(pg_url)) & dead  # its predecessor's main process still looks alive
    assert again.named("ledger.host_name_in_use") == []


def test_another_state_dir_under_the_same_name_is_warned_of_once(
    tmp_path: Path, shared_api: FakeAPI, pg_url: str
) -> None:
    """Two daemons named "shared", each with its own state_dir: the second's main process
    warns once, naming the first's three runs; its workers do not repeat it."""
    first, second = (host(tmp_path, name, shared_api, pg_url) for name in "ab")
    with running([first]):
        wait_for(lambda: len(runs(pg_url)) == 3, timeout=30, what="the first's runs")
        theirs = runs(pg_url)
        with running([second]) as (later,):
            wait_for(lambda: len(runs(pg_url)) == 6, timeout=30, what="the second's runs")
    (warned,) = later.named("ledger.host_name_in_use")
    assert warned["host"] == "shared"
    assert sorted(warned["runs"]) == sorted(theirs)
    assert warned["level"] == "warning"
    assert warned["action"] == "give each host its own ledger.host (or hostname)"
