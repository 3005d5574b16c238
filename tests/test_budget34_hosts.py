"""Budgets on a shared PostgreSQL ledger (issue 34, item 6), through real daemons: two
hosts (one of them in two worker processes) on one inbox and one ledger never spend more
than the endpoint's budget together, and each one's status shows the spend of both."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import DaemonProcess, make_wav
from fakeapi import FakeAPI
from test_hosts import Host

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # real daemon processes


def test_two_hosts_on_a_shared_ledger_never_spend_past_the_budget(tmp_path, pg_url):
    """Twelve 1.00 files, an endpoint budget of 4.50 a day, two hosts in `once` at once:
    four files are sent in all, the shared ledger records 4.00, and the rest wait."""
    inbox = tmp_path / "share" / "calls"
    inbox.mkdir(parents=True)
    paths = [
        make_wav(inbox / f"call-{n:02d}.wav", seconds=1.0, freq=300.0 + 20 * n) for n in range(12)
    ]
    with FakeAPI() as api:
        hosts = [
            Host(tmp_path, "h0", inbox, api, pg_url),
            Host(tmp_path, "h1", inbox, api, pg_url, processes=2),
        ]
        for host in hosts:
            host.data["endpoints"]["api"].update(price_per_hour=3600.0, budget={"per_day": 4.5})
            host.data["defaults"]["formats"] = ["txt"]  # json: the fake bills the true length
        procs = [DaemonProcess(host, command="once") for host in hosts]  # type: ignore[arg-type]
        codes = [proc.wait(180) for proc in procs]
        assert 3 in codes  # files over budget stay where they are
        assert len(api.uploads) == 4
        assert sum(p.with_suffix(".txt").exists() for p in paths) == 4
        for host in hosts:
            done = subprocess.run(
                [sys.executable, "-m", "dropscribe", "status", "--json", "-c", str(host.write())],
                capture_output=True,
                text=True,
                env={**os.environ, **host.env},
                timeout=120,
                check=True,
            )
            spend = json.loads(done.stdout)["spend"]["endpoints"]["api"]
            assert spend["today"] == pytest.approx(4.0)
            assert spend["per_day"] == 4.5
