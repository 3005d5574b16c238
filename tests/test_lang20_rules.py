"""lang20: the hook and the ``after:`` a rule by language gives (``match: {language:
de}``) are the ones that run: for a done file whose move waited for room (its pending
``after:`` tried again at a rescan, ``jobs/verdicts.py`` ``again``), and after a file's
steps (``steps/hooked.py``), on time and late. Through the real ``dropscribe``: the
hook records each call in a file; the done_dir is a tmpfs that is full first."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, tmpfs, wait_for
from fakechat import FakeChat
from test_attacks_ledgerfix import fill
from test_garbage import speak
from test_hooks20_owed import RECORD, blocking_hook, calls, killed_in_hook, ran_late
from test_language32 import GERMAN
from test_steps33b import KEY as LLM_KEY
from test_steps33b import with_steps

if TYPE_CHECKING:
    from pathlib import Path

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("after_by", ["rule", "folder"])
def test_a_language_rules_hook_runs_once_the_pending_move_works(setup: Any, after_by: str) -> None:
    """German (forced), a rule for de gives the hook (and ``after: move``, or the folder):
    done_dir full, the move waits; with room, the rescan moves a and runs the rule's
    hook once, moved_to the new place; nothing dropped."""
    log = setup.root / "hook.jsonl"
    hook = {"command": [sys.executable, "-c", RECORD, str(log)]}
    with tmpfs(setup.root / "done", "size=3m") as done:
        rule = {"match": {"language": "de"}, "hook": hook}
        setup.data["inboxes"][0] |= {"language": "de", "rules": [rule], "done_dir": str(done)}
        (rule if after_by == "rule" else setup.data["inboxes"][0])["after"] = "move"
        setup.data["rescan_seconds"] = 1
        filler = fill(done)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            daemon.wait_event("hook.deferred", timeout=30)
            filler.unlink()
            daemon.wait_event("file.after_done", timeout=30)
            daemon.wait_event("hook.ran", timeout=30)
        finally:
            daemon.kill()
    (call,) = calls(log)
    assert call["stdin"]["moved_to"] == str(done / "a.wav")
    assert (call["stdin"]["outcome"], call["stdin"]["late"]) == ("done", False)
    assert not daemon.named("file.after_dropped")
    assert not daemon.named("hook.dropped")


def test_a_language_rules_hook_runs_after_the_steps(setup: Any) -> None:
    """German (forced), the hook only in a rule for de: it runs at done and again once
    a's summary is written (outcome steps, the summary among its sidecars)."""
    log = setup.root / "hook.jsonl"
    with FakeChat(api_key=LLM_KEY) as chat:
        with_steps(setup, chat, translate_to=[])
        setup.data["inboxes"][0] |= {
            "language": "de",
            "rules": [
                {
                    "match": {"language": "de"},
                    "hook": {"command": [sys.executable, "-c", RECORD, str(log)]},
                }
            ],
        }
        daemon = DaemonProcess(setup, env={"LLM_KEY": LLM_KEY})
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "a.wav")
            wait_for(lambda: len(calls(log)) == 2, timeout=30, what="the steps' hook call")
        finally:
            daemon.kill()
    done, steps = calls(log)
    assert (done["stdin"]["outcome"], steps["stdin"]["outcome"]) == ("done", "steps")
    assert list(steps["stdin"]["steps"]) == ["summary"]
    assert not daemon.named("hook.dropped")


def test_a_language_rules_steps_hook_cut_by_a_kill_runs_late(setup: Any) -> None:
    """kill -9 while the steps' hook (only in a rule for de) runs: the next start runs it
    once more, late, with the same JSON; not hook.dropped."""
    with FakeChat(api_key=LLM_KEY) as chat, blocking_hook(setup.root, 2) as (command, log):
        with_steps(setup, chat, translate_to=[])
        setup.data["inboxes"][0] |= {
            "language": "de",
            "rules": [{"match": {"language": "de"}, "hook": {"command": command}}],
        }
        killed_in_hook(setup, log, call=2, env={"LLM_KEY": LLM_KEY})
        second = ran_late(setup, env={"LLM_KEY": LLM_KEY})
    _, steps, late = calls(log)
    assert late["stdin"] == {**steps["stdin"], "late": True}
    assert not second.named("hook.dropped")


@pytest.fixture
def german(setup: Any, multilingual: Path) -> Path:
    """language: [en, de] detected by a real multilingual Whisper (local), a.wav spoken
    German: the settings are chosen by the language heard, none is forced."""
    setup.data["endpoints"] = {"here": {"kind": "local"}}
    setup.data["defaults"] = {"endpoint": "here", "model": str(multilingual), "settle_seconds": 0}
    setup.data["inboxes"][0]["language"] = ["en", "de"]
    setup.data["rescan_seconds"] = 1
    return speak(setup.root / "a.wav", GERMAN, "de")


def test_a_detected_languages_hook_runs_once_the_pending_move_works(
    setup: Any, german: Path
) -> None:
    """German heard (no language forced), a rule for de gives the hook and after: move:
    done_dir full, the move waits; with room, the rescan moves a (the transcript's
    language routes it) and runs the rule's hook once."""
    log = setup.root / "hook.jsonl"
    hook = {"command": [sys.executable, "-c", RECORD, str(log)]}
    with tmpfs(setup.root / "done", "size=3m") as done:
        rule = {"match": {"language": "de"}, "hook": hook, "after": "move"}
        setup.data["inboxes"][0] |= {"rules": [rule], "done_dir": str(done)}
        filler = fill(done)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            german.rename(setup.inbox / "a.wav")  # whole at once: settle_seconds is 0
            daemon.wait_event("hook.deferred", timeout=240)
            filler.unlink()
            daemon.wait_event("file.after_done", timeout=30)
            daemon.wait_event("hook.ran", timeout=30)
        finally:
            daemon.kill()
    (call,) = calls(log)
    assert call["stdin"]["moved_to"] == str(done / "a.wav")
    assert {e["language"] for e in daemon.named("language.detected")} == {"de"}
    assert not daemon.named("file.after_dropped")


def test_a_detected_languages_hook_runs_after_the_steps(setup: Any, german: Path) -> None:
    """German heard (no language forced), the hook only in a rule for de: it runs at done
    and once a's summary is written (its transcript's language routes it)."""
    log = setup.root / "hook.jsonl"
    with FakeChat(api_key=LLM_KEY) as chat:
        with_steps(setup, chat, translate_to=[], formats=["txt"])
        hook = {"command": [sys.executable, "-c", RECORD, str(log)]}
        setup.data["inboxes"][0]["rules"] = [{"match": {"language": "de"}, "hook": hook}]
        daemon = DaemonProcess(setup, env={"LLM_KEY": LLM_KEY})
        try:
            daemon.wait_event("daemon.started")
            german.rename(setup.inbox / "a.wav")  # whole at once: settle_seconds is 0
            wait_for(lambda: len(calls(log)) == 2, timeout=240, what="the steps' hook call")
        finally:
            daemon.kill()
    done, steps = calls(log)
    assert (done["stdin"]["outcome"], steps["stdin"]["outcome"]) == ("done", "steps")
