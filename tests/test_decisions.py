"""Pure decision functions: settle, retry schedule, rules, rendering. No threads, no network."""

from __future__ import annotations

import email.utils
import re
from pathlib import Path

import pytest

from dropscribe.config import rules
from dropscribe.ingest.settle import SettleTracker, Stat
from dropscribe.ledger.interface import FileRow
from dropscribe.outputs import render
from dropscribe.transcribe import backoff
from dropscribe.transcript import Transcript
from dropscribe.vocab.config import Inbox, Layer
from dropscribe.vocab.settings import FolderSettings, Format, Task
from dropscribe.vocab.states import JobKey

P = Path("/in/a.wav")


def test_settle_releases_only_after_quiet_period():
    """A file is released once its stat stays the same for settle_seconds."""
    t = SettleTracker()
    t.touch(P, Stat(10, 1), 0.0, 2.0)
    assert t.due(1.9) == []
    assert t.due(2.0) == [P]
    assert not t.observe(P, Stat(20, 2), 2.0)  # grew: quiet period restarts at 2.0
    assert t.due(3.9) == []
    assert t.observe(P, Stat(20, 2), 4.0)
    assert P not in t


def test_settle_event_restarts_quiet_period():
    """A write event resets the clock even if size and mtime look unchanged."""
    t = SettleTracker()
    t.touch(P, Stat(5, 5), 0.0, 1.0)
    t.touch(P, Stat(5, 5), 0.9, 1.0)
    assert not t.observe(P, Stat(5, 5), 1.5)
    assert t.observe(P, Stat(5, 5), 2.0)


def test_settle_backdated_sighting_is_due_at_once():
    """A scan that finds a file untouched for longer than settle_seconds releases it at once."""
    t = SettleTracker()
    t.touch(P, Stat(5, 5), 10.0 - 60, 5.0)
    assert t.due(10.0) == [P]
    assert t.observe(P, Stat(5, 5), 10.0)


def test_settle_forgets_vanished_files():
    """A file that disappears is dropped, never released."""
    t = SettleTracker()
    t.touch(P, Stat(1, 1), 0.0, 0.0)
    assert not t.observe(P, None, 5.0)
    assert len(t) == 0


def test_settle_next_deadline():
    """The tracker says how long until the earliest file could settle."""
    t = SettleTracker()
    assert t.next_deadline(0.0) is None
    t.touch(P, Stat(1, 1), 0.0, 2.0)
    t.touch(Path("/in/b.wav"), Stat(1, 1), 1.0, 0.5)
    assert t.next_deadline(1.0) == pytest.approx(0.5)


def test_backoff_follows_openai_python_shape():
    """0.5 * 2**n seconds, capped, shortened by at most a quarter by jitter."""
    assert backoff.backoff(0, 8, 0.0) == 0.5
    assert backoff.backoff(3, 8, 0.0) == 4.0
    assert backoff.backoff(10, 8, 0.0) == 8.0
    assert backoff.backoff(1, 8, 0.999) == pytest.approx(0.75, abs=0.001)


def test_retry_after_is_never_undercut():
    """The wait is at least what Retry-After (or retry-after-ms) asked for."""
    assert backoff.delay(0, 8, 0.0, 7.0) == 7.0
    assert backoff.delay(5, 8, 0.0, 1.0) == 8.0
    assert backoff.parse_retry_after({"retry-after-ms": "1500", "retry-after": "9"}, 0) == 1.5
    assert backoff.parse_retry_after({"retry-after": "3"}, 0) == 3.0
    when = email.utils.formatdate(1_000_030, usegmt=True)
    assert backoff.parse_retry_after({"retry-after": when}, 1_000_000) == pytest.approx(30)
    assert backoff.parse_retry_after({"retry-after": "soon"}, 0) is None
    assert backoff.parse_retry_after({}, 0) is None


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "86400"}, 3600.0),
        ({"retry-after": "inf"}, 3600.0),
        ({"retry-after": "1e999"}, 3600.0),
        ({"retry-after": "-5"}, 0.0),
        ({"retry-after": "nan"}, None),
        ({"retry-after-ms": "nan", "retry-after": "2"}, 2.0),
        ({"retry-after": "Fri, 31 Dec 9999 23:59:59 GMT"}, 3600.0),
        ({"retry-after": "Thu, 01 Jan 1970 00:00:00 GMT"}, 0.0),
    ],
)
def test_retry_after_is_capped_at_an_hour_and_sane(headers, expected):
    """A server cannot make us wait past an hour, nor before now, nor forever."""
    assert backoff.parse_retry_after(headers, 1_000_000) == expected


@pytest.mark.parametrize(
    ("status", "headers", "expected"),
    [
        (408, {}, True),
        (409, {}, True),
        (429, {}, True),
        (500, {}, True),
        (503, {}, True),
        (400, {}, False),
        (401, {}, False),
        (413, {}, False),
        (422, {}, False),
        (500, {"x-should-retry": "false"}, False),
        (400, {"x-should-retry": "true"}, True),
    ],
)
def test_which_statuses_are_retried(status, headers, expected):
    """408/409/429/5xx are retried, the rest not, and x-should-retry overrides."""
    assert backoff.should_retry(status, headers) is expected


def inbox(*layers: Layer, include=("*.wav", "*.mp3"), exclude=(), recursive=True) -> Inbox:
    base = Layer({"endpoint": "e", "model": "m"})
    return Inbox("in", Path("/in"), recursive, include, exclude, (base, *layers))


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("a.wav", None),
        ("sub/A.WAV", None),
        (".a.wav", "hidden"),
        ("._a.wav", "hidden"),
        (".a.wav.Ab12Cd", "hidden"),
        (".stversions/a.wav", "hidden"),
        ("a.wav.part", "in-flight or temporary name"),
        ("~syncthing~a.wav.tmp", "in-flight or temporary name"),
        ("a.wav.crdownload", "in-flight or temporary name"),
        ("@eaDir/a.wav", "junk folder"),
        ("__MACOSX/a.wav", "junk folder"),
        ("a.txt", "not included"),
        ("drafts/a.wav", "excluded"),
    ],
)
def test_ignore_reasons(name, reason):
    """Junk, hidden, in-flight, not-included and excluded names each get their reason."""
    assert rules.ignore_reason(inbox(exclude=("drafts/*",)), Path("/in") / name) == reason


def test_output_dirs_and_non_recursive_inboxes_are_ignored():
    """Anything under an output_dir is ours; subfolders are skipped when recursive is false."""
    assert rules.ignore_reason(inbox(), Path("/in/out/a.wav"), [Path("/in/out")]) == (
        "dropscribe output"
    )
    assert rules.ignore_reason(inbox(recursive=False), Path("/in/s/a.wav")) == (
        "in a subfolder (recursive: false)"
    )


def test_rules_apply_in_order_by_glob_and_folder():
    """Later matching rules override earlier layers; non-matching rules are skipped."""
    box = inbox(
        Layer({"language": "de", "formats": (Format.TXT, Format.SRT)}),
        Layer({"task": Task.TRANSLATE}, folder="english"),
        Layer({"language": "fr"}, match="*.mp3"),
    )
    plain = rules.effective(box, Path("/in/x.wav"))
    assert (plain.language, plain.task, plain.response_format) == (
        "de",
        Task.TRANSCRIBE,
        "verbose_json",
    )
    assert rules.effective(box, Path("/in/english/x.wav")).task is Task.TRANSLATE
    assert rules.effective(box, Path("/in/english/x.mp3")).language == "fr"
    assert rules.effective(box, Path("/in/englishman/x.wav")).task is Task.TRANSCRIBE


def test_shaping_hash_changes_with_transcript_shaping_settings_only():
    """Model or prompt changes alter the job key; output_dir or settle time do not."""
    a = FolderSettings(endpoint="e", model="m")
    assert (
        a.shaping_hash()
        == FolderSettings(
            endpoint="e", model="m", settle_seconds=9, output_dir=Path("/x")
        ).shaping_hash()
    )
    assert a.shaping_hash() != FolderSettings(endpoint="e", model="m", prompt="p").shaping_hash()
    assert a.shaping_hash() != FolderSettings(endpoint="e", model="m2").shaping_hash()


def test_sidecar_names_and_dirs():
    """Templates fill stem, language and ext; output_dir mirrors the inbox's subfolders."""
    s = FolderSettings(
        endpoint="e",
        model="m",
        language="en",
        name_template="{stem}.{language}.{ext}",
        output_dir=Path("/out"),
    )
    assert rules.sidecar_name(s, Path("/in/a b.wav"), Format.VERBOSE_JSON) == "a b.en.verbose.json"
    assert rules.sidecar_dir(inbox(), s, Path("/in/x/y/a.wav")) == Path("/out/x/y")


T = Transcript(
    text="Hello there. General --> Kenobi.",
    duration=5.0,
    segments=(
        {"id": 0, "start": 0.0, "end": 1.2, "text": " Hello there."},
        {"id": 1, "start": 1.0, "end": 3661.5, "text": "General\n\n--> Kenobi."},
        {"id": 2, "start": 4.0, "end": 4.5, "text": "   "},
    ),
)


def test_srt_is_numbered_monotonic_and_never_breaks_its_syntax():
    """SRT cues are 1-based, times never go backwards, text never breaks the cue syntax."""
    srt = render.Page(T).render(Format.SRT).decode()
    blocks = srt.rstrip("\n").split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == [str(n) for n in range(1, len(blocks) + 1)]
    times = [b.split("\n")[1] for b in blocks]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3}", t) for t in times)
    assert times == sorted(times)
    assert srt.startswith("1\n00:00:00,000 --> 00:00:00,920\nHello there.\n")  # gap before 1.0
    texts = [" ".join(b.split("\n")[2:]) for b in blocks]
    assert " ".join(texts) == "Hello there. General -> Kenobi."
    assert srt.count("-->") == len(blocks)


def test_vtt_has_one_header_and_dotted_times():
    """WebVTT starts with WEBVTT and uses HH:MM:SS.mmm."""
    vtt = render.Page(T).render(Format.VTT).decode()
    assert vtt.startswith("WEBVTT\n\n00:00:00.000 --> 00:00:00.920\nHello there.\n")
    assert vtt.count("WEBVTT") == 1


def test_timed_formats_without_segments_get_cues_over_the_duration():
    """A server that returned no segments still yields a valid SRT spread over the audio."""
    srt = render.Page(Transcript(text="Hi", duration=2.5)).render(Format.SRT).decode()
    assert srt == "1\n00:00:00,000 --> 00:00:02,500\nHi\n"


def test_transcript_normalises_server_quirks():
    """vLLM's string duration and LocalAI's words keyed text are normalised."""
    t = Transcript.from_json(
        {
            "text": " hi ",
            "duration": "3.25",
            "words": [{"text": "hi", "start": "0.1", "end": 0.4}],
            "segments": [{"start": 0, "end": "1"}],
        }
    )
    assert t.text == "hi"
    assert t.duration == 3.25
    assert t.words == ({"word": "hi", "start": 0.1, "end": 0.4},)
    assert t.segments[0]["end"] == 1.0


def test_settle_memory_grows_with_files_not_with_write_events():
    """A thousand files each written to a hundred times (a byte at a time) leave one heap
    item per file, and each is still released once, after its last write."""
    from pathlib import Path

    tracker = SettleTracker()
    paths = [Path(f"/in/{n}.wav") for n in range(1000)]
    now = 0.0
    for size in range(100):  # one burst of events, taken before anything is looked at
        now += 0.01
        for path in paths:
            tracker.touch(path, Stat(size, size), now, 2.0)
    assert tracker.heap_size() == len(paths)
    assert tracker.due(now + 1.0) == []
    grown = [p for p in tracker.due(now + 2.0) if not tracker.observe(p, Stat(99, 99), now + 2)]
    assert sorted(grown) == sorted(paths)  # the last look saw it grown: quiet again from here
    released = [p for p in tracker.due(now + 4.0) if tracker.observe(p, Stat(99, 99), now + 4)]
    assert sorted(released) == sorted(paths)
    assert tracker.heap_size() == 0


def test_processes_auto_follows_the_cores_for_http_and_stays_one_for_local():
    """processes: auto is one per core (1 to 4) for HTTP endpoints, 1 where kind: local
    is used; a number is kept as it is."""
    from dropscribe.config.schema import process_count

    assert process_count("auto", ["openai"], 1) == 1
    assert process_count("auto", ["openai", "groq"], 2) == 2
    assert process_count("auto", ["openai"], 32) == 4
    assert process_count("auto", ["openai"], None) == 1
    assert process_count("auto", ["openai", "local"], 8) == 1
    assert process_count(3, ["local"], 8) == 3


def ledger_row(state: str, *, identity=(100, 5, 7), digest="d" * 64, shaping=None, formats="txt"):
    settings = FolderSettings(endpoint="e", model="m", formats=(Format.TXT,))
    key = JobKey(digest, shaping or settings.shaping_hash())
    size, mtime_ns, inode = identity
    return FileRow(
        "/in/a.wav", "in", size, mtime_ns, inode, digest, key, state, formats, "[]", None, 0.0
    )


@pytest.mark.parametrize(
    ("row", "how", "expected"),
    [
        (None, {"identity": (100, 5, 7)}, None),
        (ledger_row("done"), {"identity": (100, 5, 7)}, "already done"),
        (ledger_row("done"), {"identity": (100, 6, 7)}, None),  # written to since
        (ledger_row("failed"), {"identity": (100, 5, 7)}, "quarantined"),
        (ledger_row("error"), {"identity": (100, 5, 7)}, None),  # tried again
        (ledger_row("done"), {"digest": "d" * 64}, "already done"),  # same content, new inode
        (ledger_row("done"), {"digest": "e" * 64}, None),
        (ledger_row("failed"), {"digest": "d" * 64}, None),  # a quarantine is of that file only
        (ledger_row("done", formats=""), {"digest": "d" * 64}, None),  # txt never written
        (
            ledger_row("done", shaping="0" * 16),
            {"digest": "d" * 64},
            "settings changed since it was done; rerun_on_change is false",
        ),
    ],
)
def test_already_done_is_decided_by_identity_before_settling_and_by_content_after(
    row, how, expected
):
    """The ledger's word stands for the very same file (a quarantine too), or for the same
    content once hashed, and only while the formats and the shaping settings still match."""
    settings = FolderSettings(endpoint="e", model="m", formats=(Format.TXT,))
    assert rules.settled_before(row, settings, **how) == expected


def test_changed_settings_run_a_done_file_again_only_with_rerun_on_change():
    """With rerun_on_change, a file done under other shaping settings is done again."""
    settings = FolderSettings(endpoint="e", model="m", formats=(Format.TXT,), rerun_on_change=True)
    row = ledger_row("done", shaping="0" * 16)
    assert rules.settled_before(row, settings, digest="d" * 64) is None
