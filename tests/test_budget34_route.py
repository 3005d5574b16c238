"""Routing by price and deadline (issue 34, item 3), through the real daemon: ``route:
cheapest`` sends a file to the cheaper endpoint of the list; with ``deadline:``, once the
cheap endpoint is measured too slow to finish in time, the next file goes to the dearer
one. The decision's pure piece (vocab/route.py) is tested apart."""

from __future__ import annotations

import signal

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from dropscribe.vocab.route import Backlog, Option, ordered
from fakeapi import FakeAPI

COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 30, "backoff_max": 0.2}


def endpoints(setup, dear: FakeAPI, cheap: FakeAPI, **route) -> None:
    """A dear endpoint first in the list, a cheap one second."""
    setup.data["endpoints"] = {
        "dear": {"base_url": dear.base_url, "price_per_hour": 0.36, **COMMON},
        "cheap": {"base_url": cheap.base_url, "price_per_hour": 0.04, **COMMON},
    }
    setup.data["defaults"].update(endpoint=["dear", "cheap"], model="whisper-1", **route)


def test_cheapest_sends_the_file_to_the_cheaper_endpoint(setup):
    """route: cheapest: the second endpoint of the list, the cheaper, takes the file and
    the first is never asked."""
    with FakeAPI() as dear, FakeAPI() as cheap:
        endpoints(setup, dear, cheap, route="cheapest")
        path = make_wav(setup.inbox / "a.wav", seconds=1.0)
        proc = DaemonProcess(setup, command="once")
        assert proc.wait(120) == 0
        assert path.with_suffix(".txt").exists()
        assert (len(dear.uploads), len(cheap.uploads)) == (0, 1)
        assert proc.named("file.fallback") == []


def test_a_deadline_the_cheap_endpoint_cannot_meet_sends_the_next_file_to_a_faster_one(setup):
    """route: cheapest, deadline: 1s; the cheap endpoint takes the first file and is
    measured at 2.5 s per audio second: the next file goes to the dearer, faster one."""
    with FakeAPI() as dear, FakeAPI(delay=2.5) as cheap:
        endpoints(setup, dear, cheap, route="cheapest", deadline="1s")
        setup.data["endpoints"]["cheap"]["max_concurrency"] = 1  # one file at a time
        proc = DaemonProcess(setup)
        try:
            first = make_wav(setup.inbox / "a.wav", seconds=1.0, freq=300.0)
            wait_for(first.with_suffix(".txt").exists, timeout=60, what="the first file")
            second = make_wav(setup.inbox / "b.wav", seconds=1.0, freq=500.0)
            wait_for(second.with_suffix(".txt").exists, timeout=60, what="the second file")
            assert (len(dear.uploads), len(cheap.uploads)) == (1, 1)
            assert cheap.uploads[0].sha256 != dear.uploads[0].sha256
        finally:
            proc.signal(signal.SIGTERM)
            proc.wait(30)


@pytest.mark.parametrize(
    ("route", "deadline", "expected"),
    [
        ("in_order", None, ["a", "b", "c"]),
        ("cheapest", None, ["c", "b", "a"]),
        ("cheapest", 15.0, ["b", "a", "c"]),  # c: 10 s x 2.0 = 20 s for this file, too late
        ("fastest", None, ["a", "c", "b"]),  # b not measured: after the measured ones
    ],
)
def test_ordered_by_route(route, deadline, expected):
    """The list ordered by price, by deadline, by measured speed, or as written."""
    options = [
        Option("a", "m", 0.36, 0.1),
        Option("b", "m", 0.18, None),
        Option("c", "m", 0.04, 2.0),
    ]
    backlog = None if deadline is None else Backlog(10, deadline)  # routing34b
    order = ordered(options, route, 10.0, backlog)
    assert [name for name, _ in order] == expected
