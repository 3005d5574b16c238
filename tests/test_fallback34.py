"""Several endpoints per folder (issue 34, items 1, 2 and 5), through the real daemon: three
endpoints on 127.0.0.1, the first made to fail in each way (down, out of quota, 402, its
model gone, an empty answer for speech); the file goes to the next with file.fallback;
explain and status say which endpoint took it and why another was passed over; a daemon
killed mid-request does not send the file to another endpoint afterwards."""

from __future__ import annotations

import json
import re
import shutil
import socket
import subprocess
from typing import TYPE_CHECKING, Any

import pytest

from conftest import API_KEY, DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI, Reply, Upload, openai_error

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

MODELS = {"first": "whisper-large-v3-turbo", "second": "gpt-transcribe", "third": "tiny.en"}


class Quota(FakeAPI):
    """An account out of quota: every request is OpenAI's 429 insufficient_quota."""

    def _next_reply(self, upload: Upload) -> Reply:
        return openai_error(
            429,
            "You exceeded your current quota, please check your plan and billing details.",
            "insufficient_quota",
            "insufficient_quota",
        )


class Unpaid(FakeAPI):
    """A gateway whose credit ran out: every request is 402 Payment Required."""

    def _next_reply(self, upload: Upload) -> Reply:
        return openai_error(402, "Insufficient credits: add credits to continue", "billing")


def free_port() -> int:
    """A port nothing listens on (a server that is down)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def speak(path: Path) -> Path:
    """Real speech, synthesised by espeak-ng (the VAD hears it)."""
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    text = "Hello there. This recording holds a few seconds of clear English speech."
    subprocess.run(["espeak-ng", "-v", "en", "-s", "150", "-w", str(path), text], check=True)
    return path


def three(setup: Any, first: str, second: FakeAPI, third: FakeAPI, **more: Any) -> None:
    """The folder's endpoints: first (a groq), second (an openai), third (a speaches)."""
    common = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}
    setup.data["endpoints"] = {
        "first": {"kind": "groq", "base_url": first, **common, **more},
        "second": {"kind": "openai", "base_url": second.base_url, **common},
        "third": {"kind": "speaches", "base_url": third.base_url, **common},
    }
    setup.data["defaults"].update(endpoint=["first", "second", "third"], model=MODELS)


@pytest.fixture
def spares() -> Iterator[tuple[FakeAPI, FakeAPI]]:
    """The second and third endpoints, both well."""
    with FakeAPI(api_key=API_KEY) as second, FakeAPI(api_key=API_KEY, kind="speaches") as third:
        yield second, third


def failing(how: str) -> FakeAPI:
    """The first endpoint, failing ``how``."""
    if how == "quota":
        return Quota(api_key=API_KEY, kind="groq")
    if how == "402":
        return Unpaid(api_key=API_KEY, kind="groq")
    api = FakeAPI(api_key=API_KEY, kind="groq", answer=lambda _: {"text": ""})
    if how == "gone":
        api.gone[MODELS["first"]] = "404"
    return api


@pytest.mark.parametrize(
    ("how", "reason"),
    [("quota", "quota"), ("402", "quota"), ("gone", "gone"), ("empty", "empty")],
)
def test_a_file_goes_to_the_next_endpoint_when_the_first_fails(setup, spares, how, reason):
    """The first endpoint out of quota (429 insufficient_quota, or 402), its model gone, or
    answering nothing for speech: the file is done by the second, with its own model, and
    file.fallback names both endpoints and why; explain and status say so."""
    second, third = spares
    with failing(how) as first:
        three(setup, first.base_url, second, third)
        audio = speak(setup.inbox / "talk.wav") if how == "empty" else setup.inbox / "a.wav"
        if how != "empty":
            make_wav(audio, seconds=1.0)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("file.done", timeout=60)
        finally:
            daemon.kill()
    [fallback] = daemon.named("file.fallback")
    assert (fallback["endpoint"], fallback["to"], fallback["reason"]) == ("first", "second", reason)
    assert len(first.uploads) == 1
    assert [u.fields["model"] for u in second.uploads] == [MODELS["second"]]
    assert third.uploads == []
    assert audio.with_suffix(".txt").read_text().startswith("transcript of")
    explained = setup.command("explain", str(audio)).stdout
    assert f"endpoint first ({MODELS['first']}): passed over: {reason}" in explained
    assert f"endpoint second ({MODELS['second']}): took it" in explained
    found = json.loads(setup.command("status", "--json").stdout)
    [passed] = found["passed_over"]
    assert (passed["endpoint"], passed["path"]) == ("first", str(audio))
    assert passed["reason"].startswith(reason)


def test_a_down_endpoint_and_an_empty_account_leave_the_files_to_the_third(setup, spares):
    """The first endpoint down (nothing listens), the second out of quota: every file is
    done by the third; once the first's breaker opens, files skip it without a request."""
    _, third = spares
    with Quota(api_key=API_KEY) as second:
        three(setup, f"http://127.0.0.1:{free_port()}/v1", second, third, pause_after_failures=2)
        for n in range(4):
            make_wav(setup.inbox / f"f{n}.wav", seconds=1.0, freq=300 + 50 * n)  # 4 contents
        setup.data["workers"] = 1  # one after the other: the breaker's count is seen
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("file.done", count=4, timeout=60)
        finally:
            daemon.kill()
    assert len(third.uploads) == 4
    passed = daemon.named("file.fallback")
    assert {(e["endpoint"], e["to"]) for e in passed} == {("first", "second"), ("second", "third")}
    firsts = [e["reason"] for e in passed if e["endpoint"] == "first"]
    assert firsts[:2] == ["down", "down"]
    assert all(r.startswith("paused") for r in firsts[2:]), firsts
    assert len(second.uploads) == 1  # out of quota once: paused, never asked again
    assert daemon.named("endpoint.paused")


def killed_mid_request(setup: Any, first: FakeAPI, then: list[Reply]) -> DaemonProcess:
    """kill -9 while ``first`` holds the file's request; restarted once ``first`` answers
    ``then`` (and then as usual); the restarted daemon, run until the file is done."""
    first.hold()
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    daemon = DaemonProcess(setup)
    try:
        assert first.wait_waiting(1, timeout=60)
    finally:
        daemon.kill()  # SIGKILL: the request was in flight
    first.release()  # the killed request is answered to no one
    wait_for(lambda: first.uploads[0].reply, what="the cut request's end")
    first.script.extend(then)
    again = DaemonProcess(setup)
    try:
        again.wait_event("file.done", timeout=60)
    finally:
        again.kill()
    return again


def test_a_request_cut_by_a_kill_is_not_sent_to_another_endpoint(setup, spares):
    """kill -9 while the first (paid) endpoint holds the request: after the restart the
    file goes to that endpoint again (fallback.held) and waits while it answers 429 rate
    limits, never going to the second; it is done by the first."""
    second, third = spares
    with FakeAPI(api_key=API_KEY, kind="groq") as first:
        three(setup, first.base_url, second, third)
        busy = openai_error(429, "Rate limit reached", "requests", "rate_limit_exceeded")
        again = killed_mid_request(setup, first, [busy, busy])
    [held] = again.named("fallback.held")
    assert held["endpoint"] == "first"
    assert again.named("file.fallback") == []
    assert second.uploads == third.uploads == []
    assert [u.reply for u in first.uploads[1:]] == ["429", "429", "200"]


def test_after_a_kill_a_refusal_sends_the_file_on_and_says_so(setup, spares):
    """kill -9 mid-request, then the first endpoint answers out of quota: the file goes
    to the second, with file.fallback saying a request may have reached the first."""
    second, third = spares
    with FakeAPI(api_key=API_KEY, kind="groq") as first:
        three(setup, first.base_url, second, third)
        quota = openai_error(429, "You exceeded your current quota", "x", "insufficient_quota")
        again = killed_mid_request(setup, first, [quota])
    [passed] = again.named("file.fallback")
    assert (passed["endpoint"], passed["to"]) == ("first", "second")
    assert passed["reason"].startswith("quota (after a request that may have reached it")
    assert len(second.uploads) == 1
    assert third.uploads == []


def test_check_config_names_what_a_model_mapping_gets_wrong(setup, spares):
    """A model: mapping naming an endpoint not in the list is refused with its line and
    the name it may be a typo of; an endpoint of the list without a model too."""
    second, third = spares
    three(setup, second.base_url, second, third)
    setup.data["defaults"]["model"] = {"frist": "whisper-large-v3-turbo", "second": "whisper-1"}
    done = setup.command("check-config")
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    typo = next(line for line in lines if "defaults.model.frist" in line)
    assert "did you mean 'first'?" in typo
    assert re.search(r"dropscribe\.yaml:\d+: defaults\.model\.frist:", typo)  # file:line
    assert any("gives no model for endpoint 'first', 'third'" in line for line in lines)


def test_once_with_every_endpoint_down_leaves_the_file_and_exits_3(setup):
    """dropscribe once, all three endpoints down: the file stays where it is, unreachable,
    and the exit status is 3, as with one endpoint down."""
    down = [f"http://127.0.0.1:{free_port()}/v1" for _ in range(3)]
    common = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}
    setup.data["endpoints"] = {
        name: {"base_url": url, **common} for name, url in zip(MODELS, down, strict=True)
    }
    setup.data["defaults"].update(endpoint=list(MODELS), model="whisper-1")
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    once = DaemonProcess(setup, command="once")
    assert once.wait() == 3
    assert [e["to"] for e in once.named("file.fallback")] == ["second", "third"]
    assert (setup.inbox / "a.wav").exists()
