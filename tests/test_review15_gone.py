"""review15: a folder's list whose every model is gone (each pair paused for an hour,
gone.py) frees the worker as a list all paused does (wake15), through the real dropscribe
process and fake API."""

from __future__ import annotations

import datetime as dt
import signal
import time

import pytest

from conftest import API_KEY, DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI, openai_error

pytestmark = pytest.mark.slow

COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}


def test_a_list_whose_models_are_all_gone_frees_the_worker(setup):
    """One worker; a folder's two endpoints both answer its model gone (404
    model_not_found: the pair paused for an hour): the file waits where it is
    (file.waiting, ``until`` the hour's end) holding no worker, so another folder's file
    is done meanwhile, rather than queued behind a file tried every second for an hour."""
    with FakeAPI(api_key=API_KEY) as one, FakeAPI(api_key=API_KEY) as two:
        listed, plain = setup.root / "listed", setup.root / "plain"
        listed.mkdir()
        plain.mkdir()
        for name, server in (("a", one), ("b", two)):
            server.script.extend(
                openai_error(404, "The model has been deprecated", code="model_not_found")
                for _ in range(200)
            )
            setup.data["endpoints"][name] = {"base_url": server.base_url, **COMMON}
        setup.data["inboxes"] = [
            {"path": str(listed), "endpoint": ["a", "b"]},
            {"path": str(plain)},
        ]
        setup.data["rescan_seconds"] = 3600
        setup.data["workers"] = 1
        stuck = make_wav(listed / "stuck.wav", seconds=0.5)
        proc = DaemonProcess(setup)
        try:
            proc.wait_event("file.waiting", timeout=30)
            [said] = proc.named("file.waiting")
            assert said["path"] == str(stuck)
            until = dt.datetime.fromisoformat(said["until"]).timestamp()
            assert until == pytest.approx(time.time() + 3600, abs=120)  # the hour's end
            other = make_wav(plain / "other.wav", seconds=0.3, freq=300)
            wait_for(other.with_suffix(".txt").exists, timeout=30, what="the other folder's file")
            assert not stuck.with_suffix(".txt").exists()
            assert not proc.named("file.failed")
        finally:
            proc.signal(signal.SIGTERM)
            proc.wait(30)
