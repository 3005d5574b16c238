"""Steps after the transcript (issue 33), the second half: step sidecars owned as the
transcript's are, private as their recording, through the real dropscribe process, the
fake transcription API and the fake chat server."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from conftest import DaemonProcess, Setup, make_wav
from fakechat import FakeChat, Reply, meeting

if TYPE_CHECKING:
    from collections.abc import Iterator

    from fakeapi import FakeAPI

KEY = "llm-key-0123"


@pytest.fixture
def chat() -> Iterator[FakeChat]:
    with FakeChat(api_key=KEY) as server:
        yield server


def with_steps(setup: Setup, chat: FakeChat, **more: Any) -> None:
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
            "chat": {"endpoint": "llm", "model": "some-model"},
            "summary": True,
            "translate_to": ["de"],
            **more,
        }
    )


def test_a_users_own_summary_and_translation_files_are_left_alone(setup, chat):
    """A user's own meeting.summary.md and meeting.de.srt beside the recording are never
    overwritten: the step sidecars take meeting.wav.summary.md and meeting.wav.de.srt (the
    transcript's fallback names), claimed in the ledger, with sidecar.renamed said."""
    with_steps(setup, chat)
    mine = {"meeting.summary.md": b"my own notes\n", "meeting.de.srt": b"my own subtitles\n"}
    for name, data in mine.items():
        (setup.inbox / name).write_bytes(data)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "meeting.wav")
        daemon.wait_event("step.written", 2, timeout=30)
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    for name, data in mine.items():
        assert (setup.inbox / name).read_bytes() == data, name
    assert (setup.inbox / "meeting.wav.summary.md").read_text().startswith("# Meeting")
    assert "de: " in (setup.inbox / "meeting.wav.de.srt").read_text()
    renamed = {
        Path(e["wanted"]).name: Path(e["sidecar"]).name for e in daemon.named("sidecar.renamed")
    }
    assert renamed == {
        "meeting.summary.md": "meeting.wav.summary.md",
        "meeting.de.srt": "meeting.wav.de.srt",
    }
    written = {Path(p).name for e in daemon.named("step.written") for p in e["sidecars"]}
    assert {"meeting.wav.summary.md", "meeting.wav.de.srt", "meeting.md"} <= written


@pytest.fixture
def open_setup(api: FakeAPI) -> Iterator[Setup]:
    """A Setup whose folders another user may reach (pytest's own are 0700 for root)."""
    root = Path(tempfile.mkdtemp(prefix="dropscribe-steps-", dir="/tmp"))
    root.chmod(0o755)
    old = os.umask(0o022)
    try:
        yield Setup(root, api)
    finally:
        os.umask(old)
        shutil.rmtree(root, ignore_errors=True)


def read_as_nobody(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["runuser", "-u", "nobody", "--", "cat", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )


def test_step_sidecars_of_a_private_recording_are_private(open_setup, chat):
    """Under umask 022 a 0600 recording's summary and translation are 0600 and another
    user cannot read them; a 0644 recording's are 0644 and readable."""
    setup = open_setup
    with_steps(setup, chat)
    setup.inbox.chmod(0o755)
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "secret.wav").chmod(0o600)
        make_wav(setup.inbox / "public.wav", freq=300).chmod(0o644)
        daemon.wait_event("step.written", 4, timeout=40)
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    for name in ("summary.md", "de.srt", "de.txt", "md"):
        secret, public = setup.inbox / f"secret.{name}", setup.inbox / f"public.{name}"
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
        denied = read_as_nobody(secret)
        assert denied.returncode != 0, secret
        assert "Permission denied" in denied.stderr
        assert stat.S_IMODE(public.stat().st_mode) == 0o644, public
        assert read_as_nobody(public).returncode == 0, public


def run_cli(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args, "-c", str(setup.config_path)],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **setup.env, "LLM_KEY": KEY},
    )


def test_a_refused_step_is_quarantined_and_status_and_explain_say_so(setup, chat):
    """A chat endpoint that refuses every step: each step is tried max_attempts times, then
    quarantined with the refusal as its reason (status --json, status, explain say so, while
    another recording's steps are done with their tokens counted per endpoint); a reload
    tries the quarantined steps again."""
    with_steps(setup, chat)
    refusal = "Your request was rejected as a result of our safety system."
    chat.always = Reply(
        400,
        {
            "error": {
                "message": refusal,
                "type": "invalid_request_error",
                "param": None,
                "code": "content_filter",
            }
        },
    )
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_output(
            lambda: len([e for e in daemon.named("step.failed") if e["quarantined"]]) >= 2,
            40,
            "both steps quarantined",
        )
        failed = daemon.named("step.failed")
        assert sorted((e["step"], e["attempt"], e["quarantined"]) for e in failed) == [
            ("summary", 1, False),
            ("summary", 2, True),
            ("translate:de", 1, False),
            ("translate:de", 2, True),
        ]
        chat.always = None
        make_wav(setup.inbox / "b.wav", freq=300)
        daemon.wait_event("step.written", 2, timeout=30)
        sent = len(chat.requests)

        found = json.loads(run_cli(setup, "status", "--json").stdout)
        steps = found["steps"]
        assert steps["counts"] == {"pending": 0, "done": 2, "failed": 0, "quarantined": 2}
        [used] = steps["tokens"]
        done = daemon.named("step.done")
        assert used == {
            "endpoint": "llm",
            "in": sum(e["tokens_in"] for e in done),
            "out": sum(e["tokens_out"] for e in done),
        }
        assert used["in"] > 0
        assert {(Path(f["path"]).name, f["step"], f["state"]) for f in steps["files"]} == {
            ("a.wav", "summary", "quarantined"),
            ("a.wav", "translate:de", "quarantined"),
        }
        assert all(refusal in f["reason"] and f["attempts"] == 2 for f in steps["files"])
        people = run_cli(setup, "status").stdout
        assert "steps: pending 0, done 2, failed 0, quarantined 2" in people
        assert "tokens this month" in people
        told = run_cli(setup, "explain", str(setup.inbox / "a.wav")).stdout
        assert "summary: quarantined on llm (some-model)" in told
        assert refusal in told
        told = run_cli(setup, "explain", str(setup.inbox / "b.wav")).stdout
        assert "translate:de: done on llm (some-model), tokens" in told
        assert "sidecars: b.de.txt, b.de.srt" in told
        assert len(chat.requests) == sent  # status and explain only read

        daemon.signal(signal.SIGHUP)
        daemon.wait_event("steps.forgiven")
        daemon.wait_event("step.written", 4, timeout=30)
        counts = json.loads(run_cli(setup, "status", "--json").stdout)["steps"]["counts"]
        assert counts == {"pending": 0, "done": 4, "failed": 0, "quarantined": 0}
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()


def test_a_long_transcript_is_summarised_in_parts_after_the_context_is_learned(setup):
    """A 25-minute transcript through a model with a 4,096-token context: the first request,
    sent whole, is refused with OpenAI's context_length_exceeded; the limit it names is
    learned (chat.learned), the transcript is cut into parts that fit, each part's notes
    taken (every word sent once, in order) and all of them combined into the summary."""
    setup.api.answer = lambda _upload: meeting(25)
    words = meeting(25)["text"].split()
    with FakeChat(api_key=KEY, context=4096) as chat:
        with_steps(setup, chat, translate_to=[])
        daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "long.wav")
            daemon.wait_event("step.written", timeout=60)
        finally:
            daemon.signal(signal.SIGTERM)
            daemon.wait()
    assert chat.replies[0] == "400"
    [learned] = [e for e in daemon.named("chat.learned") if "context_tokens" in e]
    assert learned["context_tokens"] == 4096
    notes = [r for r in chat.requests if r["messages"][0]["content"].startswith("You take notes")]
    assert len(notes) >= 3
    assert chat.replies[1:] == ["200"] * (len(chat.requests) - 1)
    sent = [w for r in notes for w in r["messages"][-1]["content"].split()]
    assert sent == words  # every part used, once, in order
    combined = chat.requests[-1]["messages"][-1]["content"]
    for n, request in enumerate(notes, 1):
        said = request["messages"][-1]["content"].split()
        assert f"Part {n}:\n- notes on {len(said)} words, {said[0]} to {said[-1]}" in combined
    [done] = daemon.named("step.done")
    assert done["parts"] == len(notes)
    assert (setup.inbox / "long.summary.md").read_text().startswith("# Meeting")


def test_once_leaves_the_step_files_the_service_would(setup, chat):
    """once writes the summary and the translation beside the transcript's sidecars before
    it exits; with the chat endpoint down it still exits 0 with the transcript written and
    says the steps are pending (steps.pending), and the next once writes them without
    transcribing again."""
    with_steps(setup, chat)
    make_wav(setup.inbox / "a.wav")
    chat.down = True
    first = DaemonProcess(setup, command="once", env={"LLM_KEY": KEY})
    assert first.wait() == 0
    assert (setup.inbox / "a.srt").exists()
    assert not (setup.inbox / "a.summary.md").exists()
    [pending] = first.named("steps.pending")
    assert pending["steps"] == 2
    chat.down = False
    make_wav(setup.inbox / "b.wav", freq=300)
    second = DaemonProcess(setup, command="once", env={"LLM_KEY": KEY})
    assert second.wait() == 0
    assert not second.named("steps.pending")
    for name in ("a", "b"):
        assert (setup.inbox / f"{name}.summary.md").read_text().startswith("# Meeting")
        assert "de: " in (setup.inbox / f"{name}.de.srt").read_text()
    assert len(setup.api.uploads) == 2


def test_the_hook_runs_again_once_the_steps_are_written_naming_their_sidecars(setup, chat):
    """The hook runs at done (the transcript's sidecars), then once more with outcome
    "steps" when every step is written: its JSON names the transcript's and the steps'
    sidecars, and each step's under "steps"."""
    calls = setup.root / "calls.jsonl"
    script = f"import sys; open({str(calls)!r}, 'a').write(sys.stdin.read() + '\\n')"
    with_steps(setup, chat, hook={"command": [sys.executable, "-c", script]})
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "m.wav")
        daemon.wait_event("hook.ran", 2, timeout=40)
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    done, steps = (json.loads(line) for line in calls.read_text().splitlines())
    assert done["outcome"] == "done"
    assert steps["outcome"] == "steps"
    assert steps["file"] == str(setup.inbox / "m.wav")
    names = {Path(p).name for p in steps["sidecars"]}
    assert names == {"m.txt", "m.srt", "m.md", "m.summary.md", "m.de.txt", "m.de.srt"}
    assert {k: sorted(Path(p).name for p in v) for k, v in steps["steps"].items()} == {
        "summary": ["m.md", "m.summary.md"],
        "translate:de": ["m.de.srt", "m.de.txt"],
    }


def metric(text: str, name: str, **labels: str) -> float:
    """One sample of the Prometheus text ``text`` (0 when absent)."""
    shown = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    found = re.search(rf"^{name}\{{{re.escape(shown)}\}} (\S+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def test_metrics_count_each_steps_tokens_and_failures_per_chat_endpoint(setup, chat):
    """/metrics has dropscribe_step_tokens_total by chat endpoint, step and direction (the
    sums of step.done's usage) and dropscribe_step_failures_total (a refused summary: 1)."""
    with_steps(setup, chat)
    setup.data["metrics"] = {"port": 0}
    chat.script.append(
        Reply(400, {"error": {"message": "flagged", "type": "x", "param": None, "code": None}})
    )
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("metrics.listening")
        url = str(daemon.named("metrics.listening")[0]["url"])
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("step.written", 2, timeout=40)
        text = httpx.get(url, timeout=5).text
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
    assert metric(text, "dropscribe_step_failures_total", endpoint="llm", step="summary") == 1
    assert metric(text, "dropscribe_step_failures_total", endpoint="llm", step="translate:de") == 0
    for event in daemon.named("step.done"):
        for direction in ("in", "out"):
            labels = {"endpoint": "llm", "step": event["step"], "direction": direction}
            assert (
                metric(text, "dropscribe_step_tokens_total", **labels)
                == event[f"tokens_{direction}"]
            )
            assert event[f"tokens_{direction}"] > 0


def test_the_glossary_reaches_the_steps_and_a_new_one_rewrites_them_without_asking(setup, chat):
    """The chat model gets the transcript as its sidecars show it (glossary applied) and
    the glossary is applied to the steps' answers; a new glossary writes the transcript's
    sidecars and the steps' again (the md note keeps its summary) from what is stored:
    no upload, no chat request."""
    with_steps(setup, chat, glossary={"transcript": "record", "talk": "conversation"})
    daemon = DaemonProcess(setup, env={"LLM_KEY": KEY})
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "g.wav")
        daemon.wait_event("step.written", 2, timeout=30)
        asked = len(chat.requests)
        assert all("transcript" not in r["messages"][-1]["content"] for r in chat.requests)
        summary = (setup.inbox / "g.summary.md").read_text()
        assert "A conversation of" in summary
        assert "de: record of" in (setup.inbox / "g.de.srt").read_text()
        assert "A conversation of" in (setup.inbox / "g.md").read_text()

        setup.data["defaults"]["glossary"] = {"transcript": "minutes", "talk": "chat"}
        setup.write()
        daemon.signal(signal.SIGHUP)
        note = setup.inbox / "g.md"
        daemon.wait_output(
            lambda: "minutes of" in note.read_text() and "A chat of" in note.read_text(),
            30,
            "the md note with the new glossary and the summary",
        )
        assert "A chat of" in (setup.inbox / "g.summary.md").read_text()
        assert "de: record of" in (setup.inbox / "g.de.srt").read_text()  # as it was asked
        assert len(chat.requests) == asked
        assert len(setup.api.uploads) == 1
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait()
