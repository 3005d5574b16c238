"""Word times for a text-only model: local alignment against short spans, and the local engine.

    python bench/align.py [--minutes 3] [--speed-minutes 30]
    python bench/align.py --speed-only [--speed-minutes 30]   # the speed target alone
    python bench/align.py --running [--before /work/main/daemon]  # cues cut mid-speech

The recording is espeak-ng speech (libespeak-ng through ctypes, its word events the
truth) of varied paragraphs with pauses of 0.3-2.5 s between them. Each run is
`dropscribe once` with `formats: [txt, srt]`:

- gpt-transcribe (text only, PROTOCOL.md 7.2) on a local fake server that answers the
  true text: with local timing (the default), and with `align: false` (short spans);
- the local engine (tiny.en), its word times snapped to the speech.

For each: requests sent, the error of every cue's start against its first word's true
start (median, 90th percentile, worst), the same signed (late is positive) for cues
whose first word comes after a pause (at least ``min_gap`` of quiet before it) and for
cues starting mid-speech, cues that end before their last word's sound does (by more
than 50 ms), and the daemon's peak RSS. Then the alignment alone of
``--speed-minutes`` of audio (the recording said over and over), in a fresh process as
the daemon does it (the wav decoded, the words timed, the model loaded before): wall
and CPU seconds, each thread's CPU seconds (CTranslate2 runs the encoder and the
alignment on two threads), and the peak RSS. The machine may be shared, so a fixed
numpy workload is timed in the same run as a baseline (about 0.2 s on an idle 2-core
machine); the wall clock counts only on an idle machine, and "on two idle cores about"
is the busiest thread's CPU seconds (or half the CPU seconds, if more).

``--running`` times running speech instead: the long comma-less sentences of
tests/test_timing30.py said by 3 voices at 3 rates, each the 1st, 2nd and 3rd rendition
in one libespeak-ng process (27 renditions, each timed here and transcribed by the local
engine, and cut, on its own as tests/test_timing30b_renditions.py does, in a child
process: the same text again and again in one recording is taken for an engine's loop by
the sidecars' guard), where cues are cut inside sentences and start mid-speech.
``--before DIR`` (either way) runs the cues again with another checkout's package (its ``daemon``
folder, e.g. main's), on the same audio in the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import difflib
import json
import os
import pickle
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from common import once_config, run_once  # noqa: E402
from dropscribe.vocab.settings import SubtitleRules  # noqa: E402
from fakeapi import FakeAPI  # noqa: E402
from test_align_speech import RATE, Spoken, spoken  # noqa: E402
from test_timing30 import RUNNING  # noqa: E402
from test_timing30b_renditions import rendition  # noqa: E402

if TYPE_CHECKING:
    from collections.abc import Iterator

SENTENCES = (
    "This recording is long, so the daemon is stopped while it is transcribed.",
    "The weather was cold on Monday morning, and the trains were running late.",
    "Our meeting began at nine with a short review of the budget for next year.",
    "Two new people joined the team, and both of them work from the northern office.",
    "After lunch we talked about the website, which needs a faster search page.",
    "The last item was the summer party, planned for the second week of July.",
    "Everyone agreed to send their notes by Friday, and the meeting ended early.",
    "In the afternoon the sales team presented their figures for the autumn.",
    "Revenue grew in three regions, while the eastern office reported a small decline.",
    "The director asked for a plan by the end of the month.",
    "Nobody objected, so the proposal will go to the board on Thursday.",
)
GAPS = (0.3, 0.6, 1.2, 2.5)
VOICES, RATES, NTHS = ("en-us", "en", "en-us+f3"), (140, 165, 185), (1, 2, 3)
PAUSED = SubtitleRules().min_gap  # quiet before a cue's first word: it starts after a pause


def recording(seconds: float) -> Spoken:
    """Paragraphs of one to three sentences, with pauses, until ``seconds`` are spoken."""
    rng = np.random.default_rng(7)
    parts, truth, at, n = [], [], 0.0, 0
    while at < seconds:
        text = " ".join(SENTENCES[(n + i) % len(SENTENCES)] for i in range(rng.integers(1, 4)))
        said = spoken(text, gap=float(rng.choice(GAPS)), speed=int(rng.integers(150, 185)))
        parts.append(said.pcm)
        truth += [(w, a + at, b + at) for w, a, b in said.words]
        at += said.seconds
        n += 3
    return Spoken(np.concatenate(parts), truth)


def running() -> list[Spoken]:
    """RUNNING said by each voice at each rate, the 1st, 2nd and 3rd rendition in one
    libespeak-ng process (each after half a second of quiet)."""
    return [
        rendition(RUNNING, nth, speed, voice) for voice in VOICES for speed in RATES for nth in NTHS
    ]


def baseline() -> float:
    """Seconds for a fixed numpy workload: how busy the machine is now."""
    a = np.random.default_rng(0).standard_normal((400, 400))
    started = time.perf_counter()
    for _ in range(20):
        a = np.tanh(a @ a / 400)
    return time.perf_counter() - started


def cue_errors(srt: str, truth: list[tuple[str, float, float]]) -> dict:
    """Each cue's start error against its first word (matched to the truth by sequence
    alignment where the words differ), signed and split by whether the word comes after
    a pause or mid-speech; the cues ending before their last word; and whether the cues
    hold every word of the truth once, in order."""
    cues = []
    for block in srt.strip().split("\n\n"):
        lines = block.splitlines()
        stamps = re.findall(r"(\d+):(\d+):(\d+)[,.](\d+)", lines[1])
        start, end = (
            int(h) * 3600 + int(m) * 60 + int(s) + int(ms) / 1000 for h, m, s, ms in stamps
        )
        cues.append((start, end, " ".join(lines[2:]).split()))
    said = [w for _, _, words in cues for w in words]
    known = [w for w, _, _ in truth]
    norm = [re.sub(r"\W", "", w.lower()) for w in said]
    matcher = difflib.SequenceMatcher(
        None, norm, [re.sub(r"\W", "", w.lower()) for w in known], autojunk=False
    )
    to_truth = {}
    for a, b, size in matcher.get_matching_blocks():
        to_truth.update({a + k: b + k for k in range(size)})
    errors, paused, mid, early, at = [], [], [], 0, 0
    for start, end, words in cues:
        first, last = to_truth.get(at), to_truth.get(at + len(words) - 1)
        if first is not None:
            errors.append(abs(start - truth[first][1]))
            quiet = truth[first][1] - truth[first - 1][2] if first else PAUSED
            (paused if quiet >= PAUSED - 1e-9 else mid).append(start - truth[first][1])
        # a word whose truth espeak-ng lost (its event merged with the next word's, so
        # the starts around it are out of order) is not judged, as in the tests
        around = [t[1] for t in truth[max(0, (last or 0) - 1) : (last or 0) + 3]]
        if last is not None and around == sorted(around):
            early += end < truth[last][2] - 0.05
        at += len(words)
    return {
        "errors": errors,
        "paused": paused,
        "mid": mid,
        "early": early,
        "whole": said == known,
    }


def through(work: Path, speech: Spoken, name: str, endpoint: dict, **settings) -> dict:
    inbox = work / name
    inbox.mkdir()
    speech.write(inbox / "talk.wav")
    wall, rss = run_once(once_config(work, endpoint, inbox, name=name, **settings), quiet=True)
    found = cue_errors((inbox / "talk.srt").read_text(), speech.words)
    return {"wall": wall, "rss": rss, **found}


def report(name: str, result: dict, requests: int | None) -> None:
    e = sorted(result["errors"])
    p90 = e[int(0.9 * (len(e) - 1))]
    sent = f"{requests} request(s), " if requests is not None else ""
    print(
        f"{name:34s} {sent}{len(e)} cues: start error median {statistics.median(e) * 1000:4.0f} ms,"
        f" p90 {p90 * 1000:4.0f} ms, worst {e[-1] * 1000:5.0f} ms; {result['early']} cues end"
        f" before their last word; every word once in order: {result['whole']};"
        f" {result['wall']:.1f} s"
    )
    for key, what in (("paused", "after a pause"), ("mid", "mid-speech")):
        late = sorted(result[key])
        if late:
            print(
                f"{'':34s} {what:13s} {len(late):3d} cues: start late by median"
                f" {statistics.median(late) * 1000:4.0f} ms, p90"
                f" {late[int(0.9 * (len(late) - 1))] * 1000:4.0f} ms, worst"
                f" {late[-1] * 1000:5.0f} ms, earliest {late[0] * 1000:5.0f} ms"
            )


@contextlib.contextmanager
def package(path: str) -> Iterator[None]:
    """The daemons started inside run ``path``'s package."""
    old = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = path
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("PYTHONPATH", None)
        else:
            os.environ["PYTHONPATH"] = old


def renditions(before: str | None) -> None:
    """The running-speech renditions timed here and transcribed by the local engine (in
    a child process per package, each rendition on its own as
    tests/test_timing30b_renditions.py does, cut with the default rules), this tree's and
    ``before``'s on the same audio; each cue's start against its first word, split, and
    the cues ending early. The wall time is both sources'."""
    said = running()
    seconds = sum(r.seconds for r in said)
    print(
        f"running speech: {len(said)} renditions, {seconds:.0f} s, {sum(len(r.words) for r in said)} words"
    )
    print(f"baseline (numpy workload): {baseline():.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "renditions.pickle"
        path.write_bytes(pickle.dumps(said))
        for label, package in [("", None)] + ([("before: ", before)] if before else []):
            env = {**os.environ, "PYTHONPATH": package} if package else None
            started = time.perf_counter()
            done = subprocess.run(
                [sys.executable, __file__, "--cue-renditions", str(path)],
                env=env,
                check=True,
                capture_output=True,
            )
            wall = time.perf_counter() - started
            results = json.loads(done.stdout.splitlines()[-1])
            report(f"{label}gpt-transcribe, timed here", {"wall": wall, **results["aligned"]}, None)
            report(
                f"{label}local engine tiny.en (snapped)", {"wall": wall, **results["local"]}, None
            )


def cue_renditions(path: Path) -> None:
    """In this (fresh) process: each rendition in ``path`` aligned to RUNNING, and
    transcribed by the local engine (tiny.en) and snapped, each cut as srt; the figures
    of each as JSON."""
    from dropscribe.outputs.render import Page  # noqa: PLC0415 - the child's own package
    from dropscribe.timing import timed  # noqa: PLC0415
    from dropscribe.transcribe.local import LocalEngine  # noqa: PLC0415
    from dropscribe.transcript import Transcript  # noqa: PLC0415
    from dropscribe.vocab.endpoints import Endpoint  # noqa: PLC0415
    from dropscribe.vocab.settings import FolderSettings, Format  # noqa: PLC0415

    engine = LocalEngine(Endpoint(name="local", kind="local", cpu_threads=2))
    settings = FolderSettings(model="tiny.en", formats=["srt"], endpoint="local")
    totals = {
        source: {"errors": [], "paused": [], "mid": [], "early": 0, "whole": True}
        for source in ("aligned", "local")
    }
    with tempfile.TemporaryDirectory() as tmp:
        for speech in pickle.loads(path.read_bytes()):
            wav = speech.write(Path(tmp) / "talk.wav")
            pcm = timed.decoded(wav)
            answers = {
                "aligned": timed.aligned(Transcript(text=RUNNING, language="en"), pcm, "tiny.en"),
                "local": timed.snapped(engine.transcribe(wav, settings), pcm),
            }
            for source, answer in answers.items():
                found = cue_errors(Page(answer).render(Format.SRT).decode(), speech.words)
                total = totals[source]
                for key in ("errors", "paused", "mid"):
                    total[key] += found[key]
                total["early"] += int(found["early"])
                total["whole"] &= bool(found["whole"])
    print(json.dumps(totals))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=3.0)
    parser.add_argument("--speed-minutes", type=float, default=30.0)
    parser.add_argument("--speed-only", action="store_true", help="only the alignment's speed")
    parser.add_argument("--running", action="store_true", help="running speech, cut mid-speech")
    parser.add_argument("--before", help="another checkout's daemon/ folder, for a before/after")
    parser.add_argument("--time", nargs=2, type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--cue-renditions", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time:
        timed_alone(*args.time)
        return
    if args.cue_renditions:
        cue_renditions(args.cue_renditions)
        return
    if args.running:
        renditions(args.before)
        return
    speech = recording(args.minutes * 60)
    if args.speed_only:
        speed(speech, args.speed_minutes)
        return
    seconds = len(speech.pcm) / RATE
    truth = " ".join(w for w, _, _ in speech.words)
    print(f"recording: {seconds:.0f} s of espeak-ng speech, {len(speech.words)} words")
    print(f"baseline (numpy workload): {baseline():.2f} s")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        with FakeAPI(answer=lambda _u: {"text": truth}) as api:
            endpoint = {"base_url": api.base_url, "timeout": 600}
            aligned = through(work, speech, "aligned", endpoint, model="gpt-transcribe")
            requests = len(api.uploads)
            refused = sum(u.reply != "200" for u in api.uploads)
            report("gpt-transcribe, local timing", aligned, requests)
            print(f"  refused: {refused}; peak RSS of the daemon {aligned['rss']:.0f} MiB")
            if args.before:
                with package(args.before):
                    before = through(work, speech, "before", endpoint, model="gpt-transcribe")
                report("before: gpt-transcribe, local timing", before, None)
            spans = through(work, speech, "spans", endpoint, model="gpt-transcribe", align=False)
            # The fake answers every span with the whole text: only the requests count.
            print(f"{'gpt-transcribe, align: false':34s} {len(api.uploads) - requests} requests")
            assert spans["wall"] > 0
        local = through(work, speech, "local", {"kind": "local", "cpu_threads": 2}, model="tiny.en")
        report("local engine tiny.en (snapped)", local, None)
        if args.before:
            with package(args.before):
                engine = {"kind": "local", "cpu_threads": 2}
                before = through(work, speech, "local-before", engine, model="tiny.en")
            report("before: local engine tiny.en (snapped)", before, None)
    speed(speech, args.speed_minutes)


def speed(speech: Spoken, minutes: float) -> None:
    """The alignment alone of ``minutes`` of audio (``speech`` said over and over), in a
    fresh process as the daemon does it: the wav decoded, the answer's words timed."""
    times = max(1, round(minutes * 60 / speech.seconds))
    with tempfile.TemporaryDirectory() as tmp:
        wav = Spoken(np.tile(speech.pcm, times), []).write(Path(tmp) / "long.wav")
        text = Path(tmp) / "answer.txt"
        text.write_text(" ".join([w for w, _, _ in speech.words] * times))
        print(f"baseline (numpy workload): {baseline():.2f} s")
        subprocess.run([sys.executable, __file__, "--time", str(wav), str(text)], check=True)


def _thread_cpu() -> dict[str, float]:
    """CPU seconds of each thread of this process so far."""
    tick = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
            out[tid] = (int(fields[11]) + int(fields[12])) / tick
    return out


def timed_alone(wav: Path, text: Path) -> None:
    """In this (fresh) process: decode ``wav``, time ``text``'s words against it, and
    report wall and CPU seconds, each thread's CPU seconds and the peak RSS."""
    from dropscribe.timing import timed, whisper  # noqa: PLC0415 - the child's own work
    from dropscribe.transcript import Transcript  # noqa: PLC0415

    whisper.model("tiny.en")  # loaded once per daemon, before its first file
    usage = resource.getrusage(resource.RUSAGE_SELF)
    threads, started = _thread_cpu(), time.perf_counter()
    pcm = timed.decoded(wav)
    timed.aligned(Transcript(text=text.read_text(), language="en"), pcm, "tiny.en")
    wall = time.perf_counter() - started
    after, done = resource.getrusage(resource.RUSAGE_SELF), _thread_cpu()
    cpu = after.ru_utime + after.ru_stime - usage.ru_utime - usage.ru_stime
    busy = sorted((done[t] - threads.get(t, 0.0) for t in done), reverse=True)
    seconds = len(pcm) / RATE
    best = max(busy[0], cpu / 2)  # two idle cores: no less than the busiest thread
    print(
        f"alignment of {seconds / 60:.0f} min (decoded and timed, model loaded before):"
        f" wall {wall:.1f} s ({seconds / wall:.0f}x real time, on this machine now);"
        f" CPU {cpu:.1f} s ({seconds / cpu:.0f}x real time per CPU second);"
        f" threads' CPU seconds {', '.join(f'{b:.1f}' for b in busy if b >= 0.05)};"
        f" on two idle cores about {best:.0f} s ({seconds / best:.0f}x real time);"
        f" peak RSS {after.ru_maxrss / 1024:.0f} MiB"
    )


if __name__ == "__main__":
    main()
