"""Steps after the transcript (issue 33): a summary and translations on a chat endpoint,
through the real dropscribe process, the fake transcription API and the fake chat server."""

from __future__ import annotations

import re
import signal
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav
from fakechat import FakeChat, Reply

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

CUE = re.compile(r"(\d+)\n(\S+ --> \S+)\n(.*?)\n(?:\n|$)", re.DOTALL)


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(api_key="llm-key-0123") as server:
        yield server


def with_steps(setup: Any, chat: FakeChat, model: str = "some-model", **more: Any) -> None:
    setup.data["endpoints"]["llm"] = {
        "kind": "chat",
        "base_url": chat.base_url,
        "api_key_env": "LLM_KEY",
        "max_attempts": 2,
        "backoff_max": 0.2,
        "timeout": 10,
    }
    setup.data["defaults"].update(
        {
            "formats": ["txt", "srt", "md"],
            "chat": {"endpoint": "llm", "model": model},
            "summary": True,
            "translate_to": ["de"],
            **more,
        }
    )


def cues(path: Path) -> list[tuple[str, str, str]]:
    return CUE.findall(path.read_text())


def steps_done(daemon: DaemonProcess, step: str) -> list[dict[str, Any]]:
    return [e for e in daemon.named("step.done") if e.get("step") == step]


def test_a_recording_gets_its_summary_and_a_translation_with_the_source_times(setup, chat):
    """A folder with summary: and translate_to: [de] gives the transcript's sidecars,
    name.summary.md (and its sections in the md note) and name.de.srt with the source's times;
    changing the summary prompt re-runs only the summary, never the transcription."""
    with_steps(setup, chat)
    daemon = DaemonProcess(setup, env={"LLM_KEY": "llm-key-0123"})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "meeting.wav")
        daemon.wait_event("step.written", 2, timeout=30)
        inbox = setup.inbox
        for name in (
            "meeting.txt",
            "meeting.srt",
            "meeting.md",
            "meeting.summary.md",
            "meeting.de.srt",
        ):
            assert (inbox / name).exists(), name
        source, german = cues(inbox / "meeting.srt"), cues(inbox / "meeting.de.srt")
        assert source
        assert [(n, t) for n, t, _ in german] == [(n, t) for n, t, _ in source]
        assert [x for _, _, x in german] == [f"de: {' '.join(x.split())}" for _, _, x in source]
        summary = (inbox / "meeting.summary.md").read_text()
        assert summary.startswith("# Meeting")
        assert "## Action items" in summary
        assert "## Action items" in (inbox / "meeting.md").read_text()
        translated = len([r for r in chat.requests if "Translate:" in r["messages"][-1]["content"]])
        assert len(setup.api.uploads) == 1

        setup.data["defaults"]["summary"] = {"prompt": "A custom summary, please."}
        setup.write()
        daemon.signal(signal.SIGHUP)
        daemon.wait_output(lambda: len(steps_done(daemon, "summary")) >= 2, 20, "the summary again")
        daemon.wait_event("step.written", 3, timeout=20)
        assert (inbox / "meeting.summary.md").read_text().startswith("# Custom")
        assert len(setup.api.uploads) == 1
        assert len(steps_done(daemon, "translate:de")) == 1
        assert (
            len([r for r in chat.requests if "Translate:" in r["messages"][-1]["content"]])
            == translated
        )
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()


def test_a_chat_outage_delays_the_steps_never_the_transcript(setup, chat):
    """With the chat endpoint down the transcript's sidecars are written at once; the steps
    fail, are retried, and are written once it is back."""
    with_steps(setup, chat)
    chat.down = True
    daemon = DaemonProcess(setup, env={"LLM_KEY": "llm-key-0123"})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "call.wav")
        daemon.wait_event("file.done")
        assert (setup.inbox / "call.srt").exists()
        daemon.wait_event("step.failed")
        failed = daemon.named("step.failed")[0]
        assert failed["will_retry"] is True
        assert failed["quarantined"] is False
        assert not (setup.inbox / "call.summary.md").exists()
        chat.down = False
        daemon.wait_event("step.written", 2, timeout=40)
        assert (setup.inbox / "call.summary.md").exists()
        assert (setup.inbox / "call.de.srt").exists()
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()


def test_refusals_of_max_tokens_and_temperature_are_learned_and_429_waited_on(setup, chat):
    """A newer model's 400 for max_tokens and for temperature are learned (kept in the
    ledger), a 429's Retry-After honoured, and the steps done."""
    with_steps(setup, chat, model="new-model")
    chat.script.append(
        Reply(
            429,
            {
                "error": {
                    "message": "Rate limit reached",
                    "type": "requests",
                    "param": None,
                    "code": "rate_limit_exceeded",
                }
            },
            {"Retry-After": "1"},
        )
    )
    daemon = DaemonProcess(setup, env={"LLM_KEY": "llm-key-0123"})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "talk.wav")
        daemon.wait_event("step.written", 2, timeout=40)
        refused = {e["refused"] for e in daemon.named("chat.learned") if "refused" in e}
        assert refused == {"max_tokens", "temperature"}
        last = chat.requests[-1]
        assert "max_tokens" not in last
        assert "temperature" not in last
        assert "max_completion_tokens" in last
        assert chat.replies[0] == "429"
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
