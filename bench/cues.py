"""Readable cues and paragraphs from a 20-minute meeting with the local engine's segments.

    python bench/cues.py [--minutes 20] [--seed 1] [--before /work/main/daemon]

The meeting is synthetic and seeded: three people take turns of one to six sentences
(9-17 words each, about 2.7 words a second); sentences are 0.3-0.9 s apart, a quarter
of them 1.5-4 s; turns 0.4-3.8 s apart. It is answered as the local engine answers:
word times, and segments of 20-30 s cut wherever they fall, with speakers (WhisperX).
Each figure is read from the srt, txt and tsv ``Page`` renders with the default
subtitle rules; how late cues start is split by whether their first word comes after
a pause (``min_gap`` of quiet or more) or mid-speech. ``--before DIR`` runs the same meeting through another checkout's
package (its ``daemon`` folder, e.g. main's) in a child process, for a before/after.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import time
from statistics import median

from dropscribe.outputs.render import Page
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format, SubtitleRules

PEOPLE = ["Maria", "the sales team", "our new designer", "the board", "Tom", "everyone"]
VERBS = ["will present", "takes over", "reviews", "has finished", "should send", "looks at"]
THINGS = [
    "the website",
    "the budget for next year",
    "the figures from the autumn",
    "the contract with the supplier",
    "the plan for the new office",
    "the list of open issues",
]
WHEN = ["later", "on Monday morning", "before lunch", "from the end of the month", "by Friday"]
GAP = SubtitleRules().min_gap  # quiet before a cue's first word: it starts after a pause
OPENERS = ["", "", "If nobody objects, ", "As we said, ", "Second, ", "Well, ", "Yes, "]


def meeting(minutes: float, seed: int) -> dict:
    """The answer (verbose_json with words and speakers) for a synthetic meeting."""
    rng = random.Random(seed)
    words, at, who = [], 0.5, "A"
    while at < minutes * 60:
        for n in range(rng.randint(1, 6)):
            sentence = f"{rng.choice(OPENERS)}{rng.choice(PEOPLE)} {rng.choice(VERBS)}"
            sentence += f" {rng.choice(THINGS)} {rng.choice(WHEN)}."
            sentence = sentence[0].upper() + sentence[1:]
            if n and rng.random() < 0.15:
                sentence = rng.choice(["Okay.", "Right.", "Yes, exactly.", "Thanks."])
            for word in sentence.split():
                length = 0.1 + 0.05 * len(word) * rng.uniform(0.7, 1.3)
                words.append(
                    {"word": f" {word}", "start": round(at, 3), "end": round(at + length, 3)}
                    | {"speaker": who}
                )
                at += length + rng.uniform(0.02, 0.12)
            at += rng.uniform(1.5, 4.0) if rng.random() < 0.25 else rng.uniform(0.3, 0.9)
        who = rng.choice([p for p in "ABC" if p != who])
        at += rng.uniform(0.4, 3.8) - 0.6
    segments, limit = [], 0.0
    for word in words:
        if not segments or word["start"] >= limit:
            limit = word["start"] + rng.uniform(20, 30)
            segments.append(
                {
                    "id": len(segments),
                    "start": word["start"],
                    "text": "",
                    "speaker": word["speaker"],
                }
            )
        segments[-1]["end"] = word["end"]
        segments[-1]["text"] += word["word"]
    return {
        "text": "".join(w["word"] for w in words).strip(),
        "language": "en",
        "duration": round(at, 3),
        "segments": segments,
        "words": words,
    }


def spread(late: list[float]) -> str:
    """The median and 90th percentile of ``late`` (seconds), in ms."""
    if not late:
        return "-"
    ordered = sorted(late)
    return f"{median(ordered) * 1000:.0f}/{ordered[int(0.9 * (len(ordered) - 1))] * 1000:.0f}"


def figures(answer: dict) -> dict:
    """What a reader meets in the srt, txt and tsv of ``answer``."""
    page = Page(Transcript.from_json(answer))
    started = time.perf_counter()
    page.render(Format.SRT)
    seconds = time.perf_counter() - started
    words = answer["words"]
    cues = page.subtitles
    short = [c for c in cues if len(" ".join(c.lines).split()) <= 2]
    orphans = 0  # <= 2 words, under a second, a pause of 2 s or more after it
    for n, cue in enumerate(cues):
        following = cues[n + 1].start if n + 1 < len(cues) else cue.end + 2.0
        if cue in short and cue.end - cue.start < 1.0 and following - cue.end >= 2.0:
            orphans += 1
    stops = (".", "?", "!")
    alone = 0  # cues of 1-2 words that are not a whole sentence: left behind by one
    for n, cue in enumerate(cues):
        before = cues[n - 1].text if n else "."
        if cue in short and not (before.endswith(stops) and cue.text.endswith(stops)):
            alone += 1
    straddling = sum(  # a sentence ends inside the cue, and the cue ends mid-sentence
        any(w.endswith(stops) for w in c.text.split()[:-1]) and not c.text.endswith(stops)
        for c in cues
    )
    early = late = at = 0  # cues ending (starting) 50 ms before (after) their words
    paused: list[float] = []  # how late each cue starts: after min_gap of quiet or more
    running: list[float] = []  # ... or mid-speech
    for cue in cues:
        late += cue.start > words[at]["start"] + 0.05
        quiet = words[at]["start"] - words[at - 1]["end"] if at else GAP
        (paused if quiet >= GAP - 1e-9 else running).append(cue.start - words[at]["start"])
        at += len(cue.text.split())
        early += cue.end < words[at - 1]["end"] - 0.05
    paragraphs = page.turns
    spans, at = [], 0
    for _, text in paragraphs:
        count = len(text.split())
        spans.append((words[at]["start"], words[at + count - 1]["end"], at, at + count))
        at += count
    across = sum(
        any(words[k]["start"] - words[k - 1]["end"] >= 1.5 for k in range(a + 1, b))
        for _, _, a, b in spans
    )
    rows = page.render(Format.TSV).decode().splitlines()[1:]
    lengths = [(int(r.split("\t")[1]) - int(r.split("\t")[0])) / 1000 for r in rows]
    return {
        "words": len(words),
        "cues": len(cues),
        "cues_of_1_2_words": len(short),
        "of_those_under_1s": sum(c.end - c.start < 1.0 for c in short),
        "orphans_before_2s_silence": orphans,
        "cues_of_1_2_words_not_a_whole_sentence": alone,
        "cues_of_1_word_not_a_whole_sentence": sum(
            len(c.text.split()) == 1
            and not ((cues[n - 1].text if n else ".").endswith(stops) and c.text.endswith(stops))
            for n, c in enumerate(cues)
        ),
        "cues_ending_mid_sentence_after_a_sentence_end": straddling,
        "cues_ending_over_50ms_before_their_last_word": early,
        "cues_starting_over_50ms_after_their_first_word": late,
        "cues_starting_after_a_pause": len(paused),
        "  their start late by, median / p90 (ms)": spread(paused),
        "cues_starting_mid_speech": len(running),
        "  their start late by, median / p90 (ms) ": spread(running),
        "paragraphs": len(paragraphs),
        "longest_paragraph_s": round(max(b - a for a, b, _, _ in spans), 1),
        "paragraphs_across_a_1.5s_pause": across,
        "tsv_rows": len(rows),
        "longest_tsv_row_s": round(max(lengths), 1),
        "srt_render_s": round(seconds, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--before", help="another checkout's daemon/ folder, for a before/after")
    parser.add_argument("--json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    answer = meeting(args.minutes, args.seed)
    after = figures(answer)
    if args.json:
        print(json.dumps(after))
        return
    table = {"after": after}
    if args.before:
        env = {**os.environ, "PYTHONPATH": args.before}
        command = [sys.executable, __file__, "--json", "--minutes", str(args.minutes)]
        out = subprocess.run(
            [*command, "--seed", str(args.seed)], env=env, check=True, capture_output=True
        )
        table = {"before": json.loads(out.stdout), "after": after}
    print(f"{args.minutes:g}-minute meeting, seed {args.seed}, default subtitle rules")
    for key in after:
        print(f"  {key:48s}" + "".join(f"{table[k][key]:>10}" for k in table))
    if len(table) == 2:
        print(f"  {'':48s}{'before':>10}{'after':>10}")


if __name__ == "__main__":
    main()
