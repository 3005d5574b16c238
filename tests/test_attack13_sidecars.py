"""attack13: the steps' sidecars (issue 33) under attack through the real dropscribe
process: links planted where they go, a private recording, and translations that try to
inject structure into the srt and vtt (read back with the ``srt`` and ``webvtt-py``
packages: real parsers, not ours)."""

from __future__ import annotations

import io
import os
import shutil
import signal
import subprocess
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, Setup, make_wav
from fakeapi import Reply as Answer
from fakechat import FakeChat, Reply

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fakeapi import FakeAPI

pytestmark = pytest.mark.slow

KEY = "llm-key-attack13"


class Injecting(FakeChat):
    """FakeChat whose translations put ``payload`` in every cue's text."""

    def __init__(self, payload: str = "") -> None:
        super().__init__(api_key=KEY)
        self.payload = payload

    def reply(self, body: dict[str, Any]) -> Reply:
        reply = super().reply(body)
        if reply.status == 200 and self.payload:
            message = reply.body["choices"][0]["message"]
            message["content"] = message["content"].replace(" de: ", f" de: {self.payload} ")
        return reply


def with_steps(setup: Setup, chat: FakeChat, formats: list[str]) -> None:
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
            "formats": formats,
            "chat": {"endpoint": "llm", "model": "m"},
            "summary": True,
            "translate_to": ["de"],
        }
    )


def ended(daemon: DaemonProcess) -> set[str]:
    """The steps that were written or whose sidecars were refused."""
    events = daemon.named("step.written") + daemon.named("step.sidecar_failed")
    return {e["step"] for e in events}


# ------------------------------------------------------------ links planted


def test_a_link_planted_at_a_step_sidecar_is_never_written_through(setup):
    """Links at name.summary.md and name.de.srt, planted before the steps write, pointing
    at files outside the inbox: those files keep their bytes."""
    outside = setup.root / "outside"
    outside.mkdir()
    targets = {}
    for name in ("a.summary.md", "a.de.srt"):
        target = outside / f"{name}.target"
        target.write_text("precious")
        (setup.inbox / name).symlink_to(target)
        targets[name] = target
    with Injecting() as chat:
        with_steps(setup, chat, ["txt", "srt"])
        daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav", seconds=2)
            daemon.wait_output(lambda: len(ended(daemon)) >= 2, 40, "both steps' ends")
            for name, target in targets.items():
                assert target.read_text() == "precious", name
                link = setup.inbox / name
                assert link.is_symlink() or link.is_file(), name
        finally:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0


# ------------------------------------------------------------ a private recording


@pytest.fixture
def open_setup(api: FakeAPI) -> Iterator[Setup]:
    """A Setup whose folders another user may reach (pytest's own are 0700 for root)."""
    root = Path(tempfile.mkdtemp(prefix="attack13-private-", dir="/tmp"))
    root.chmod(0o755)
    old = os.umask(0o022)
    try:
        yield Setup(root, api)
    finally:
        os.umask(old)
        shutil.rmtree(root, ignore_errors=True)


def test_a_private_recordings_step_sidecars_are_private(open_setup):
    """A 0600 recording under umask 022: its summary and translation sidecars are not
    readable by user nobody, as its transcript's are not."""
    setup = open_setup
    setup.inbox.chmod(0o755)
    private = make_wav(setup.root / "secret.wav", seconds=2)
    private.chmod(0o600)
    with Injecting() as chat:
        with_steps(setup, chat, ["txt", "srt", "vtt"])
        daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
        try:
            daemon.wait_event("daemon.started")
            private.rename(setup.inbox / "secret.wav")
            daemon.wait_event("step.written", 2, timeout=40)
        finally:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    made = sorted(p.name for p in setup.inbox.iterdir())
    steps = [setup.inbox / n for n in ("secret.summary.md", "secret.de.srt", "secret.de.vtt")]
    assert all(p.exists() for p in steps), made
    readable = [p.name for p in [setup.inbox / "secret.txt", *steps] if read_as_nobody(p)]
    assert not readable, {p.name: oct(p.stat().st_mode) for p in steps}


def read_as_nobody(path: Path) -> bool:
    done = subprocess.run(
        ["runuser", "-u", "nobody", "--", "cat", str(path)],
        capture_output=True,
        check=False,
    )
    return done.returncode == 0


# ------------------------------------------------------------ translations that inject

SAID = ["Good morning to you all.", "We begin at nine.", "Any questions?", "Then we close."]
TRANSCRIPT = {
    "task": "transcribe",
    "language": "english",
    "duration": 12.0,
    "text": " ".join(SAID),
    "segments": [
        {"id": n, "seek": 0, "start": 3.0 * n, "end": 3.0 * n + 1.5, "text": text}
        for n, text in enumerate(SAID)
    ],
}

PAYLOADS = {
    "an arrow": "00:00:00,000 --> 00:09:59,000 <b>x</b> {\\an8}",
    "blank lines and a fake cue": "one\n\n99\n00:00:00,000 --> 00:00:09,000\nfake cue\n\n",
    "NULs and controls": "a\x00b\x1b[2J\rc\x0bd\x0ce\x1cf\u2028g\u2029h\x85i",
    "a very long line": "w" * 20_000,
    "vtt structure": "NOTE x\n\nWEBVTT\n\nSTYLE\n::cue { color: red }",
}


@pytest.mark.parametrize("case", list(PAYLOADS))
def test_injected_translations_keep_the_srt_and_vtt_whole(setup, case):
    """Each translated cue holding '-->', blank lines and a fake cue, NULs and control
    characters, 20,000 characters or vtt keywords: name.de.srt and name.de.vtt parse (srt,
    webvtt-py) into as many cues as the source, with the source's times."""
    import srt
    import webvtt

    with Injecting(PAYLOADS[case]) as chat:
        with_steps(setup, chat, ["srt", "vtt"])
        setup.data["defaults"]["summary"] = False
        setup.api.script.append(Answer(body=TRANSCRIPT))
        daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav", seconds=3)
            daemon.wait_output(
                lambda: bool(daemon.named("step.written") or daemon.named("step.failed")),
                40,
                "the translation",
            )
            assert daemon.named("step.written"), daemon.named("step.failed")
        finally:
            daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    source = list(srt.parse((setup.inbox / "a.srt").read_text()))
    german = list(srt.parse((setup.inbox / "a.de.srt").read_text()))
    assert len(source) == len(SAID)
    assert [(c.start, c.end) for c in german] == [(c.start, c.end) for c in source]
    assert all("de:" in c.content for c in german)
    marker = {"blank lines and a fake cue": "fake cue", "a very long line": "w" * 1000}
    assert all(marker.get(case, "de:") in c.content for c in german)  # the text reached it
    times = [
        (c.start, c.end)
        for c in webvtt.from_buffer(io.StringIO((setup.inbox / "a.vtt").read_text()))
    ]
    german_vtt = webvtt.from_buffer(io.StringIO((setup.inbox / "a.de.vtt").read_text()))
    assert [(c.start, c.end) for c in german_vtt] == times
    assert all("de:" in c.text for c in german_vtt)
