"""Several endpoints per folder (issue 34), the last gaps, through the real daemon: a slow
endpoint (no answer within its timeout:) passes the file on to the next; a file that every
endpoint of its list times out on ends as with one endpoint; what the endpoint that took
the file cannot give is logged (file.degraded) and shown by explain."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pytest

from conftest import API_KEY, DaemonProcess, make_wav
from fakeapi import FakeAPI, Reply, Upload
from test_fallback34 import MODELS, three

if TYPE_CHECKING:
    from collections.abc import Iterator


class Stalled(FakeAPI):
    """A server that takes every request and never answers (until it shuts down)."""

    def _next_reply(self, upload: Upload) -> Reply:
        return Reply(stall=600)


@pytest.fixture
def spares() -> Iterator[tuple[FakeAPI, FakeAPI]]:
    """The second and third endpoints, both well."""
    with FakeAPI(api_key=API_KEY) as second, FakeAPI(api_key=API_KEY, kind="speaches") as third:
        yield second, third


def test_a_slow_first_endpoint_passes_the_file_to_the_second(setup: Any, spares: Any) -> None:
    """The first endpoint never answers within its timeout: after that one timeout the file
    is done by the second, and file.fallback says it was slow; explain says so too."""
    second, third = spares
    with Stalled(api_key=API_KEY, kind="groq") as first:
        three(setup, first.base_url, second, third, timeout=1)
        audio = setup.inbox / "a.wav"
        make_wav(audio, seconds=1.0)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("file.done", timeout=60)
        finally:
            daemon.kill()
    [fallback] = daemon.named("file.fallback")
    assert (fallback["endpoint"], fallback["to"], fallback["reason"]) == ("first", "second", "slow")
    assert "(timeout)" in fallback["error"]
    assert len(first.uploads) == 1  # not tried again: the next endpoint took it at once
    assert [u.fields["model"] for u in second.uploads] == [MODELS["second"]]
    assert third.uploads == []
    assert audio.with_suffix(".txt").read_text().startswith("transcript of")
    explained = setup.command("explain", str(audio)).stdout
    assert f"endpoint first ({MODELS['first']}): passed over: slow" in explained


def test_a_file_every_endpoint_times_out_on_fails_as_with_one(setup: Any) -> None:
    """dropscribe once, all three endpoints slow: each is tried once, then the file fails
    as it would after its last timeout on one endpoint (not waiting forever)."""
    common = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 1, "backoff_max": 0.2}
    with (
        Stalled(api_key=API_KEY) as a,
        Stalled(api_key=API_KEY) as b,
        Stalled(api_key=API_KEY) as c,
    ):
        setup.data["endpoints"] = {
            name: {"base_url": api.base_url, **common}
            for name, api in zip(MODELS, (a, b, c), strict=True)
        }
        setup.data["defaults"].update(endpoint=list(MODELS), model="whisper-1")
        make_wav(setup.inbox / "a.wav", seconds=1.0)
        once = DaemonProcess(setup, command="once")
        once.wait(timeout=60)
    assert [e["reason"] for e in once.named("file.fallback")] == ["slow", "slow"]
    assert [len(api.uploads) for api in (a, b, c)] == [1, 1, 1]
    [failed] = once.named("file.failed")
    assert "(timeout)" in failed["error"]
