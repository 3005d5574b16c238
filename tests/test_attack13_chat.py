"""attack13: a hostile chat server on 127.0.0.1 against the steps (issue 33), through the
real dropscribe process. Whatever it answers, the step ends within the endpoint's timeout
(or its retries), memory stays bounded, the daemon and its step thread live on (the next
recording's summary is written), the transcript is written, and the chat key appears only
in the request."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from conftest import DaemonProcess, make_wav
from hostilechat import Hostile, MiB, completion, raw

pytestmark = pytest.mark.slow

KEY = "sk-chat-SECRET-0123456789abcdef"
TIMEOUT = 2.0


@pytest.fixture
def hostile() -> Any:
    with Hostile(api_key=KEY) as server:
        yield server


def configure(setup: Any, server: Hostile, max_attempts: int = 1) -> None:
    setup.data["endpoints"]["llm"] = {
        "kind": "chat",
        "base_url": server.base_url,
        "api_key_env": "LLM_KEY",
        "max_attempts": max_attempts,
        "backoff_max": 0.2,
        "timeout": TIMEOUT,
        "connect_timeout": TIMEOUT,
    }
    setup.data["defaults"].update(
        {"formats": ["txt"], "chat": {"endpoint": "llm", "model": "m"}, "summary": True}
    )


def peak_rss(pid: int) -> int:
    """The process's peak resident memory (VmHWM), in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) * 1024
    return 0


def leaks(setup: Any, daemon: DaemonProcess) -> dict[str, str]:
    """Every place the key could land, by name: log lines, the state dir's files (ledger),
    every file under the inbox (sidecars), status."""
    found = {"log": "".join(daemon.raw)}
    for folder in (setup.state, setup.inbox):
        for path in folder.rglob("*"):
            if path.is_file():
                found[str(path)] = path.read_bytes().decode("latin-1")
    status = subprocess.run(
        [sys.executable, "-m", "dropscribe", "status", "-c", str(setup.config_path)],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env, "LLM_KEY": KEY},
        timeout=60,
        check=False,
    )
    found["status"] = status.stdout + status.stderr
    return {where: text for where, text in found.items() if KEY[:12] in text}


def attacked(
    setup: Any, server: Hostile, budget: float, ends: tuple[str, ...] = ("step.failed",)
) -> DaemonProcess:
    """Run the daemon on a.wav against the server's scripted modes; the step must end (by
    one of ``ends``) within ``budget`` seconds of starting; then b.wav, honestly answered,
    gets its summary."""
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("file.done")
        assert (setup.inbox / "a.txt").exists()
        daemon.wait_event("step.started")
        began = time.monotonic()
        daemon.wait_output(
            lambda: any(daemon.named(end) for end in ends), budget + 10, f"one of {ends}"
        )
        took = time.monotonic() - began
        assert took < budget, f"the step took {took:.1f} s (budget {budget} s)"
        server.modes.clear()
        server.keep = None
        make_wav(setup.inbox / "b.wav", seconds=0.6)
        daemon.wait_output(
            lambda: any(
                "b.summary.md" in str(e.get("sidecars")) for e in daemon.named("step.written")
            ),
            30,
            "b's summary",
        )
        assert not daemon.named("steps.crashed")
        daemon.rss = peak_rss(daemon.proc.pid)  # type: ignore[attr-defined]
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert not leaks(setup, daemon)
    assert any(KEY in h for h in server.headers_seen)
    return daemon


RAW = ["huge", "huge_declared", "trickle", "stall", "trickle_headers"]


@pytest.mark.parametrize("mode", RAW)
def test_a_raw_hostile_answer_ends_within_the_timeout_and_memory_stays_bounded(
    setup, hostile, mode
):
    """An 8 GB answer, a declared 4 GB one, a body trickled a byte at a time, a stall after
    the headers, headers trickled: the step fails within the timeout (plus reading the cap),
    the daemon's peak memory stays under the cap's few multiples, the step thread lives on."""
    configure(setup, hostile)
    setup.data["endpoints"]["llm"]["max_answer_bytes"] = 8 * MiB
    hostile.modes.append(mode)
    daemon = attacked(setup, hostile, budget=TIMEOUT * 3)
    assert daemon.rss < 400 * MiB, daemon.rss  # type: ignore[attr-defined]
    assert hostile.sent < 200 * MiB


SECRET = f"the key {KEY} is wrong"
NESTED = "[" * 100_000 + "]" * 100_000
SHAPES = {
    "not json": raw(200, "{not json " + SECRET),
    "nested": raw(200, NESTED),
    "a list": raw(200, json.dumps([SECRET])),
    "choices not a list": raw(200, json.dumps({"choices": SECRET})),
    "choices empty": raw(200, json.dumps({"choices": []})),
    "choice a string": raw(200, json.dumps({"choices": [SECRET]})),
    "message a list": raw(200, json.dumps({"choices": [{"message": [SECRET]}]})),
    "content a number": completion(12345),
    "content null": completion(None),
    "content a dict": completion({"text": SECRET}),
    "finish a dict": completion("# T\n\nok", finish={"x": SECRET}),
    "usage a list": completion("# T\n\nok", usage=[1, 2]),
    "usage a string": completion("# T\n\nok", usage=SECRET),
    "tokens huge": completion("# T\n\nok", usage={"prompt_tokens": 1e400}),
    "tokens words": completion("# T\n\nok", usage={"prompt_tokens": SECRET}),
}


def test_an_answer_of_the_wrong_shape_fails_the_step_not_the_step_thread(setup, hostile):
    """Malformed JSON, JSON nested 100,000 deep, and completions whose choices, message,
    content, finish_reason or usage are of the wrong type, one recording each through one
    daemon: each step fails with a reason (no empty summary taken as one) within the
    timeout, the thread goes on to the next, the key echoed is never shown."""
    configure(setup, hostile)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        for number, (shape, mode) in enumerate(SHAPES.items()):
            lenient = shape.startswith(("finish", "usage", "tokens"))  # the text is there
            ends = ("step.failed", "step.written") if lenient else ("step.failed",)
            hostile.modes.append(mode)
            wav = make_wav(setup.inbox / f"{number}.wav", freq=300 + 40 * number)  # each its own

            def of(name: str, wav: Path = wav) -> list[dict[str, Any]]:
                return [e for e in daemon.named(name) if e.get("path") == str(wav)]

            daemon.wait_output(lambda of=of: bool(of("step.started")), 30, f"{shape}: a step")
            assert wav.with_suffix(".txt").exists(), shape
            began = time.monotonic()
            daemon.wait_output(
                lambda of=of, ends=ends: any(of(end) for end in ends),
                TIMEOUT * 3 + 10,
                f"{shape}: one of {ends}",
            )
            took = time.monotonic() - began
            assert took < TIMEOUT * 3, f"{shape}: the step took {took:.1f} s"
            if not lenient:
                assert not wav.with_suffix(".summary.md").exists(), shape
                assert of("step.failed")[0]["error"].startswith("answer is not a chat"), shape
        hostile.modes.clear()
        make_wav(setup.inbox / "honest.wav", seconds=0.6)
        daemon.wait_output(
            lambda: any(
                "honest.summary.md" in str(e.get("sidecars")) for e in daemon.named("step.written")
            ),
            30,
            "the honest recording's summary",
        )
        assert not daemon.named("steps.crashed")
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
    assert not leaks(setup, daemon)
    assert any(KEY in h for h in hostile.headers_seen)


def test_a_ten_megabyte_summary_is_bounded(setup, hostile):
    """A summary of 10 MB (under max_answer_bytes) is written or refused, never more memory
    than a few times its size, and the thread goes on."""
    configure(setup, hostile)
    hostile.modes.append(completion("# T\n\n" + "word " * (2 * MiB)))
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_output(
            lambda: bool(daemon.named("step.written") or daemon.named("step.failed")),
            30,
            "the step's end",
        )
        assert not daemon.named("steps.crashed")
        assert peak_rss(daemon.proc.pid) < 400 * MiB
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0


RATE = {"error": {"message": f"slow down {SECRET}", "type": "requests", "code": "rate_limit"}}


@pytest.mark.parametrize("after", ["31536000", "-5", "garbage", "Wed, 21 Oct 2099 07:28:00 GMT"])
def test_a_429_asking_any_wait_never_pins_the_step_thread(setup, hostile, after):
    """A 429 whose Retry-After is a year, negative, garbage or a date far ahead: the step
    waits in the ledger (or is retried at once), never in the step thread: the next
    recording's summary is still written."""
    configure(setup, hostile, max_attempts=3)
    hostile.keep = raw(429, json.dumps(RATE), Retry_After=after)
    attacked(setup, hostile, budget=TIMEOUT * 3)


def test_finish_reason_length_for_ever_ends_the_step(setup, hostile):
    """A server that cuts every answer short (finish_reason: length): the step is re-asked
    smaller a bounded number of times, then fails; never a loop."""
    configure(setup, hostile)
    setup.data["defaults"]["translate_to"] = ["de"]
    setup.data["defaults"]["formats"] = ["txt", "srt"]
    hostile.keep = completion("[1] cut", finish="length")
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav", seconds=3)
        daemon.wait_event("step.failed", 2, timeout=30)
        assert len(hostile.requests) < 50
        assert (setup.inbox / "a.srt").exists()
        assert not daemon.named("steps.crashed")
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
