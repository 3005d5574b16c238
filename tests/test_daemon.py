"""The daemon end to end in-process: real watchdog, real files, real SQLite, real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import threading
from pathlib import Path

from conftest import API_KEY, make_wav, named, started, wait_for, wav_bytes
from dropscribe.service import Daemon
from fakeapi import Reply


def sidecars(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.is_file() and not p.name.endswith(".wav"))


def test_new_file_gets_one_upload_and_its_sidecar(setup, events):
    """A WAV dropped into a watched inbox is uploaded once and gets a .txt beside it."""
    with setup.daemon():
        wait_for(started(events), what="start")
        make_wav(setup.inbox / "memo.wav")
        txt = setup.inbox / "memo.txt"
        wait_for(txt.exists, what="sidecar")
    assert txt.read_text() == "transcript of memo.wav\n"
    assert len(setup.api.uploads) == 1
    up = setup.api.uploads[0]
    assert up.filename == "memo.wav"
    assert up.content_type == "audio/wav"
    assert (
        up.sha256
        == __import__("hashlib").sha256((setup.inbox / "memo.wav").read_bytes()).hexdigest()
    )
    names = [e["event"] for e in events]
    for name in (
        "file.detected",
        "file.settled",
        "upload.started",
        "upload.finished",
        "sidecar.written",
        "file.done",
    ):
        assert name in names


def test_per_folder_settings_reach_the_server(setup, events):
    """model, language, prompt, temperature and task from inbox and rules arrive as form fields."""
    (setup.root / "prompt.txt").write_text("Glossary: dropscribe, Syncthing.\n")
    setup.data["inboxes"] = [
        {
            "path": str(setup.inbox),
            "model": "gpt-4o-transcribe",
            "language": "de",
            "prompt_file": "prompt.txt",
            "temperature": 0.2,
            "rules": [
                {"folder": "english", "task": "translate", "model": "whisper-1"},
                {"match": "*.flac", "language": "fr", "temperature": 0},
            ],
        }
    ]
    make_wav(setup.inbox / "a.wav")
    make_wav(setup.inbox / "english" / "b.wav")
    (setup.inbox / "c.flac").write_bytes(wav_bytes())
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 3, what="3 files")
    by_name = {u.filename: u for u in setup.api.uploads}
    a, b, c = by_name["a.wav"], by_name["b.wav"], by_name["c.flac"]
    assert a.path == "/v1/audio/transcriptions"
    assert a.fields == {
        "model": "gpt-4o-transcribe",
        "response_format": "json",
        "language": "de",
        "prompt": "Glossary: dropscribe, Syncthing.",
        "temperature": "0.2",
    }
    assert b.path == "/v1/audio/translations"
    assert b.fields["model"] == "whisper-1"
    assert "language" not in b.fields
    assert c.fields["language"] == "fr"
    assert c.fields["temperature"] == "0"
    assert c.content_type == "audio/flac"


def test_all_five_formats_come_from_one_upload(setup, events):
    """txt, json, srt, vtt and verbose_json are rendered from a single verbose_json upload."""
    setup.data["defaults"]["formats"] = ["txt", "json", "srt", "vtt", "verbose_json"]
    make_wav(setup.inbox / "talk.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    assert len(setup.api.uploads) == 1
    assert setup.api.uploads[0].fields["response_format"] == "verbose_json"
    assert setup.api.uploads[0].fields["timestamp_granularities[]"] == "segment"
    assert sidecars(setup.inbox) == [
        "talk.json",
        "talk.srt",
        "talk.txt",
        "talk.verbose.json",
        "talk.vtt",
    ]
    # Two short segments make one cue: together they are within every subtitle rule.
    assert (setup.inbox / "talk.srt").read_text() == (
        "1\n00:00:00,000 --> 00:00:03,250\ntranscript of talk.wav\n"
    )
    assert (setup.inbox / "talk.vtt").read_text() == (
        "WEBVTT\n\n00:00:00.000 --> 00:00:03.250\ntranscript of talk.wav\n"
    )
    assert json.loads((setup.inbox / "talk.json").read_text()) == {"text": "transcript of talk.wav"}
    verbose = json.loads((setup.inbox / "talk.verbose.json").read_text())
    assert [s["end"] for s in verbose["segments"]] == [1.5, 3.25]


def test_new_formats_render_from_the_stored_transcript_without_a_new_upload(setup, events):
    """md, lrc and tsv added to a done folder come from the ledger's transcript: no second upload."""
    setup.data["defaults"]["formats"] = ["txt", "srt"]
    make_wav(setup.inbox / "talk.wav")
    with setup.daemon(once=True):
        wait_for(lambda: named(events, "file.done"), what="done")
    setup.data["defaults"]["formats"] = ["txt", "srt", "md", "lrc", "tsv"]
    events.clear()
    with setup.daemon(once=True):
        wait_for(lambda: named(events, "file.done"), what="done again")
    assert len(setup.api.uploads) == 1
    assert sidecars(setup.inbox) == ["talk.lrc", "talk.md", "talk.srt", "talk.tsv", "talk.txt"]
    assert (
        setup.inbox / "talk.lrc"
    ).read_text() == "[00:00.00]transcript of talk.wav\n[00:03.25]\n"
    assert (setup.inbox / "talk.tsv").read_text() == (
        "start\tend\ttext\n0\t1500\ttranscript of\n1500\t3250\ttalk.wav\n"
    )
    md = (setup.inbox / "talk.md").read_text()
    assert md.startswith("---\nsource: talk.wav\ndate: ")
    assert md.endswith("---\n\n# talk\n\ntranscript of talk.wav\n")


def test_slowly_written_file_is_not_uploaded_before_complete(setup, events):
    """A file written in pieces over several seconds is uploaded whole, once, after the last write."""
    setup.data["defaults"]["settle_seconds"] = 1.0
    data = wav_bytes(seconds=2.0)
    pieces = [data[i : i + len(data) // 6 + 1] for i in range(0, len(data), len(data) // 6 + 1)]
    target = setup.inbox / "slow.wav"
    with setup.daemon():
        wait_for(started(events), what="start")
        with target.open("wb") as fh:
            for piece in pieces:
                fh.write(piece)
                fh.flush()
                os.fsync(fh.fileno())
                # A writer pausing 0.6 s between pieces: shorter than settle_seconds.
                stopped = threading.Event()
                stopped.wait(0.6)
                assert not setup.api.uploads, "uploaded while still being written"
        wait_for(lambda: named(events, "file.done"), what="done")
    assert len(setup.api.uploads) == 1
    assert setup.api.uploads[0].size == len(data)


def test_startup_scan_picks_up_files_that_arrived_while_down(setup, events):
    """Files already in the inbox (and a subfolder) when the daemon starts are transcribed."""
    make_wav(setup.inbox / "one.wav")
    make_wav(setup.inbox / "deep" / "er" / "two.mp3")
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, what="2 done")
    assert (setup.inbox / "one.txt").exists()
    assert (setup.inbox / "deep" / "er" / "two.txt").exists()


def test_junk_and_in_flight_names_are_ignored(setup, events):
    """Hidden, partial, sync-tool and junk-folder names are never uploaded; each is reported."""
    junk = [
        ".hidden.wav",
        "._memo.wav",
        ".memo.wav.Xa83kd",
        "memo.wav.part",
        "memo.wav.crdownload",
        "memo.wav.tmp",
        "~syncthing~memo.wav.tmp",
        ".syncthing.memo.wav.tmp",
        "@eaDir/memo.wav",
        "__MACOSX/memo.wav",
        "notes.txt",
        ".DS_Store",
    ]
    with setup.daemon():
        wait_for(started(events), what="start")
        for name in junk:
            make_wav(setup.inbox / name)
        make_wav(setup.inbox / "real.wav")
        wait_for(lambda: named(events, "file.done"), what="real done")
    assert [u.filename for u in setup.api.uploads] == ["real.wav"]
    reasons = {Path(e["path"]).name: e["reason"] for e in named(events, "file.ignored")}
    assert reasons["memo.wav.part"] == "in-flight or temporary name"
    assert reasons["~syncthing~memo.wav.tmp"] == "in-flight or temporary name"
    assert reasons[".hidden.wav"] == "hidden"
    assert reasons["notes.txt"] == "not included"


def test_two_sources_with_the_same_stem_never_share_a_sidecar(setup, events):
    """a.mp3 and a.wav both get their own transcript; the second takes a.wav.txt."""
    make_wav(setup.inbox / "a.wav", freq=300)
    (setup.inbox / "a.mp3").write_bytes(wav_bytes(freq=500))
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, what="2 done")
    texts = sorted(p.read_text() for p in setup.inbox.glob("a*.txt"))
    assert texts == ["transcript of a.mp3\n", "transcript of a.wav\n"]
    assert len(named(events, "sidecar.renamed")) == 1


def test_a_users_own_file_is_never_overwritten(setup, events):
    """An existing notes file with the sidecar's name is left alone."""
    (setup.inbox / "call.txt").write_text("my own notes\n")
    make_wav(setup.inbox / "call.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    assert (setup.inbox / "call.txt").read_text() == "my own notes\n"
    assert (setup.inbox / "call.wav.txt").read_text() == "transcript of call.wav\n"


def test_same_content_under_two_names_is_uploaded_once(setup, events):
    """Two copies of one recording get one upload and both get sidecars."""
    make_wav(setup.inbox / "x.wav")
    shutil.copy(setup.inbox / "x.wav", setup.inbox / "copy-of-x.wav")
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, what="2 done")
    assert len(setup.api.uploads) == 1
    assert (setup.inbox / "x.txt").exists()
    assert (setup.inbox / "copy-of-x.txt").exists()


def test_restart_does_not_transcribe_done_files_again(setup, events):
    """After a restart, finished files are skipped without an upload; new ones are done."""
    make_wav(setup.inbox / "first.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    make_wav(setup.inbox / "second.wav", freq=880)
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.done")) == 2, what="second done")
    assert sorted(u.filename for u in setup.api.uploads) == ["first.wav", "second.wav"]


def test_sidecars_in_an_output_dir_inside_the_inbox_are_not_ingested(setup, events):
    """output_dir mirrors subfolders and what is written there is never treated as input."""
    setup.data["defaults"]["output_dir"] = str(setup.inbox / "transcripts")
    setup.data["defaults"]["formats"] = ["txt", "json"]
    setup.data["inboxes"][0]["include"] = ["*.wav", "*.txt", "*.json"]
    make_wav(setup.inbox / "sub" / "m.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
        wait_for(lambda: named(events, "file.ignored"), what="output ignored")
    assert (setup.inbox / "transcripts" / "sub" / "m.txt").exists()
    assert [u.filename for u in setup.api.uploads] == ["m.wav"]


def test_name_template_shapes_sidecar_names(setup, events):
    """A folder's name_template such as {stem}.{language}.{ext} names its sidecars."""
    setup.data["defaults"].update(
        name_template="{stem}.{language}.{ext}", language="en", formats=["txt", "srt"]
    )
    make_wav(setup.inbox / "ep1.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    assert sidecars(setup.inbox) == ["ep1.en.srt", "ep1.en.txt"]


def test_api_key_appears_in_no_event(setup, events):
    """The key is sent to the server but never logged, even when the server rejects it."""
    setup.api.api_key = "a-different-key"
    make_wav(setup.inbox / "k.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "endpoint.paused"), what="endpoint paused")
    assert setup.api.uploads[0].headers["authorization"] == f"Bearer {API_KEY}"
    assert named(events, "upload.failed")[0]["status"] == 401
    assert (setup.inbox / "k.wav").exists(), "a bad key is not the file's fault"
    assert API_KEY not in json.dumps(events, default=str)
    assert API_KEY not in repr(Daemon(setup.load()).config)


def test_once_processes_what_is_there_and_returns(setup, events):
    """once: every file present is transcribed and run() returns the number that failed."""
    make_wav(setup.inbox / "p.wav")
    make_wav(setup.inbox / "q.wav", freq=600)
    daemon = Daemon(setup.load())
    failed = daemon.run(threading.Event(), once=True)
    assert failed == 0
    assert sorted(p.name for p in setup.inbox.glob("*.txt")) == ["p.txt", "q.txt"]


def test_retry_after_is_honoured_then_the_upload_succeeds(setup, events):
    """A 429 with Retry-After: 1 is retried no sooner than a second later, then succeeds."""
    from fakeapi import openai_error

    setup.api.script.append(
        openai_error(429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": "1"})
    )
    make_wav(setup.inbox / "r.wav")
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="done")
    first, second = setup.api.uploads
    assert second.at - first.at >= 1.0
    assert named(events, "upload.retrying")[0]["in_seconds"] >= 1.0
    assert (setup.inbox / "r.txt").exists()


def test_a_failing_file_does_not_stop_the_others(setup, events):
    """Permanent and exhausted failures are reported; the daemon goes on with other files."""
    from fakeapi import Reply, openai_error

    setup.data["workers"] = 1
    setup.api.script.extend(
        [
            openai_error(400, "Invalid file format."),
            Reply(500, {"error": {"message": "boom"}}),
            Reply(500, {"error": {"message": "boom"}}),
            Reply(500, {"error": {"message": "boom"}}),
        ]
    )
    for n in range(3):
        make_wav(setup.inbox / f"{n}.wav", freq=300 + 100 * n)
    with setup.daemon():
        wait_for(lambda: len(named(events, "file.failed")) == 2, what="two failures")
        wait_for(lambda: named(events, "file.done"), what="the third file")
    statuses = sorted(e["status"] for e in named(events, "file.failed"))
    assert statuses == [400, 500]
    assert len(setup.api.uploads) == 5  # 1 + 3 attempts (max_attempts: 3) + 1


def test_a_long_named_recording_taken_again_gets_its_sidecar_replaced(setup, events):
    """A recording named near the filesystem's limit (123 Cyrillic letters: 250 bytes as
    a sidecar), recorded over with new content, gets its sidecar replaced by the new
    transcript (the temporary name used for replacing once did not fit)."""
    source = setup.inbox / ("я" * 123 + ".wav")
    make_wav(source)
    with setup.daemon():
        wait_for(lambda: named(events, "file.done"), what="the first take done")
        setup.api.script.append(Reply(200, {"text": "the second take"}))
        make_wav(source, freq=880)
        wait_for(lambda: len(named(events, "file.done")) == 2, what="the second take done")
    assert source.with_suffix(".txt").read_text() == "the second take\n"
    assert not named(events, "sidecar.failed")
    assert len(setup.api.uploads) == 2
