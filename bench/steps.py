"""The issue's targets for the steps after the transcript, through ``dropscribe once``
with the fake transcription API and the fake chat server (tests/fakechat.py) on 127.0.0.1.

    python bench/steps.py [--translate-minutes 30] [--summary-minutes 120] [--context 16384]

1. Translating a meeting's subtitles (``translate_to: [de]``) costs at most 1.2x the
   tokens of the transcript's text plus the instructions (sent once): the prompt tokens
   the server counted over every request, against the tokens of the cues' text and one
   copy of the translation's instructions (both counted as the server counts them).
2. A summary of a 2-hour transcript through a model with a 16k-token context finishes,
   with every part used: the context learned from the first refusal, every word of the
   transcript sent once, in order, in the parts' requests, and every part's notes in the
   request that combines them.

The transcript is ``fakechat.meeting``: 10-second segments of numbered words, about 150
a minute. Token counts are the fake server's (4 characters a token), for both sides of
each ratio.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
import tempfile
import time
import wave
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from fakeapi import FakeAPI  # noqa: E402
from fakechat import FakeChat, meeting, tokens  # noqa: E402

CUE = re.compile(r"\d+\n\S+ --> \S+\n(.*?)\n(?:\n|$)", re.DOTALL)


def run(
    work: Path, api: FakeAPI, chat: FakeChat, steps: dict[str, Any]
) -> tuple[list[dict[str, Any]], float]:
    """``dropscribe once`` on one recording with ``steps``; its events and wall seconds."""
    inbox = work / "inbox"
    inbox.mkdir(parents=True)
    _wav(inbox / "meeting.wav")  # its transcript is the fake API's answer, whatever it holds
    config = work / "bench.yaml"
    config.write_text(
        json.dumps(
            {
                "endpoints": {
                    "fake": {"base_url": api.base_url, "timeout": 600},
                    "llm": {"kind": "chat", "base_url": chat.base_url, "timeout": 600},
                },
                "defaults": {
                    "endpoint": "fake",
                    "model": "whisper-1",
                    "settle_seconds": 0,
                    "formats": ["txt", "srt"],
                    "chat": {"endpoint": "llm", "model": "some-model"},
                    **steps,
                },
                "inboxes": [{"path": str(inbox)}],
                "state_dir": str(work / "state"),
                "log": {"format": "json", "level": "info"},
            }
        )
    )
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-m", "dropscribe", "once", "-c", str(config)],
        capture_output=True,
        text=True,
        check=True,
    )
    elapsed = time.perf_counter() - start
    events = []
    for line in done.stderr.splitlines():
        try:
            events.append(json.loads(line))
        except ValueError:
            continue
    return events, elapsed


def _wav(path: Path) -> None:
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(16000)
        out.writeframes(b"\0\0" * 8000)


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e.get("event") == name]


def translation(minutes: float) -> bool:
    answer = meeting(minutes)
    with (
        tempfile.TemporaryDirectory() as top,
        FakeAPI(answer=lambda _u: answer) as api,
        FakeChat() as chat,
    ):
        events, elapsed = run(Path(top), api, chat, {"translate_to": ["de"]})
        source = CUE.findall((Path(top) / "inbox" / "meeting.srt").read_text())
        german = CUE.findall((Path(top) / "inbox" / "meeting.de.srt").read_text())
        system = chat.requests[0]["messages"][0]["content"]
    [done] = [e for e in named(events, "step.done") if e["step"] == "translate:de"]
    text = sum(tokens(" ".join(cue.split())) for cue in source)
    baseline = text + tokens(system)
    ratio = done["tokens_in"] / baseline
    kept = len(german) == len(source) and all(
        g == f"de: {' '.join(s.split())}"
        for s, g in zip(source, (" ".join(g.split()) for g in german), strict=True)
    )
    print(
        f"translation of a {minutes:g}-minute meeting ({len(source)} cues, {elapsed:.1f} s wall):"
    )
    print(
        f"  requests {done['requests']}, prompt tokens {done['tokens_in']:,}, completion tokens {done['tokens_out']:,}"
    )
    print(f"  the cues' text {text:,} tokens + the instructions {tokens(system):,} = {baseline:,}")
    print(
        f"  prompt tokens / (text + instructions) = {ratio:.3f} (target <= 1.2): {'met' if ratio <= 1.2 else 'MISSED'}"
    )
    print(f"  every cue translated once, in order: {kept}")
    return ratio <= 1.2 and kept


def summary(minutes: float, context: int) -> bool:
    answer = meeting(minutes)
    words = answer["text"].split()
    with (
        tempfile.TemporaryDirectory() as top,
        FakeAPI(answer=lambda _u: answer) as api,
        FakeChat(context=context) as chat,
    ):
        events, elapsed = run(Path(top), api, chat, {"summary": True})
        written = (Path(top) / "inbox" / "meeting.summary.md").exists()
        requests, replies = list(chat.requests), list(chat.replies)
    notes = [r for r in requests if r["messages"][0]["content"].startswith("You take notes")]
    parts = notes or requests[-1:]  # a transcript that fits is summarised whole
    sent = [w for r in parts for w in r["messages"][-1]["content"].split()]
    combined = requests[-1]["messages"][-1]["content"]
    every = all(f"Part {n}:" in combined for n in range(1, len(notes) + 1))
    [done] = named(events, "step.done")
    learned = [e["context_tokens"] for e in named(events, "chat.learned") if "context_tokens" in e]
    print(
        f"summary of a {minutes:g}-minute transcript ({len(words):,} words, about {tokens(answer['text']):,} tokens) through a {context:,}-token model ({elapsed:.1f} s wall):"
    )
    print(f"  refused first: {replies[0]}, context learned: {learned}")
    print(
        f"  parts {done['parts']}, requests {done['requests']} (+{replies.count('400')} refused), prompt tokens {done['tokens_in']:,}, completion tokens {done['tokens_out']:,}"
    )
    ok = sent == words and every and written and done["parts"] == len(parts)
    print(
        f"  every word sent once, in order: {sent == words}; every part's notes combined: {every}; summary written: {written}: {'met' if ok else 'MISSED'}"
    )
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--translate-minutes", type=float, default=30)
    parser.add_argument("--summary-minutes", type=float, default=120)
    parser.add_argument("--context", type=int, default=16384)
    args = parser.parse_args()
    ok = translation(args.translate_minutes)
    ok = summary(args.summary_minutes, args.context) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
