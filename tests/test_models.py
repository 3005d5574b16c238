"""Every current model, right the first time: requests that fit the model, refusals learned
once, and subtitles from models without timestamps (PROTOCOL.md section 6)."""

from __future__ import annotations

import itertools
import json
import threading

import pytest

from conftest import API_KEY, make_wav, named, write_tones
from dropscribe.audio import stitch
from dropscribe.commands import status
from dropscribe.service import Daemon
from dropscribe.transcribe import models, refusals
from dropscribe.vocab.endpoints import ModelModel
from fakeapi import OPENAI_MODELS, FakeAPI, Rules, tone_answer
from test_long import cues, hertz

OPENAI_FILE_MODELS = [
    "whisper-1",
    "gpt-4o-transcribe",
    "gpt-4o-mini-transcribe",
    "gpt-4o-mini-transcribe-2025-12-15",
    "gpt-4o-transcribe-diarize",
    "gpt-transcribe",
]
FORMAT_SETS = [["txt"], ["txt", "srt"], ["txt", "vtt", "json"], ["srt", "verbose_json"]]
# Tones of 3 s with 2 s pauses over a minute: speech with room to cut.
TONES = [(5.0 * n + 1.0, 5.0 * n + 4.0, 400 + 100 * n) for n in range(12)]
SECONDS = 60.0


def serve(setup, api: FakeAPI, **settings) -> None:
    """Point the test config at ``api`` with these folder settings."""
    setup.api = api
    setup.data["endpoints"]["local"]["base_url"] = api.base_url
    setup.data["defaults"].update(settings)


def once(setup) -> int:
    return Daemon(setup.load()).run(threading.Event(), once=True)


def refused(api: FakeAPI) -> list[str]:
    return [u.reply for u in api.uploads if u.reply.startswith("4")]


# ------------------------------------------------------------------ pure decisions


def test_table_gives_each_openai_model_what_it_takes():
    """gpt-4o models: json, no times; diarize: diarized_json, no prompt; whisper-1: all."""
    assert models.table("openai", "whisper-1").timed == "verbose_json"
    for name in ("gpt-4o-transcribe", "gpt-4o-mini-transcribe-2025-12-15"):
        caps = models.table("openai", name)
        assert caps.timed is None
        assert models.ask(caps, timed=True, prompt=True, seconds=10).response_format == "json"
    diarize = models.table("openai", "gpt-4o-transcribe-diarize")
    short = models.ask(diarize, timed=True, prompt=True, seconds=20)
    assert (short.response_format, short.prompt, short.chunking) == ("diarized_json", False, False)
    assert models.ask(diarize, timed=False, prompt=False, seconds=31).chunking
    assert models.table("openai", "somebody-elses-model").formats == ("json", "text")
    assert not models.table("groq", "whisper-large-v3-turbo").translate


def test_refusals_name_what_was_refused():
    """A 400 naming a parameter becomes a kept item; one about the file does not."""
    sent = models.Ask("verbose_json", granularities=True, prompt=True)
    msg = "response_format 'verbose_json' is not compatible with model 'gpt-4o-mini-transcribe'"
    assert refusals.refusal(400, "response_format", msg, sent) == (
        "response_format",
        "verbose_json",
    )
    assert (
        refusals.refusal(400, None, "Prompt is not supported for diarization models", sent)
        == models.PROMPT
    )
    assert (
        refusals.refusal(
            400, "chunking_strategy", "chunking_strategy is required for diarization models", sent
        )
        == models.CHUNKING_REQUIRED
    )
    long = "audio duration 1500 seconds is longer than 1400 seconds which is the maximum"
    assert refusals.refusal(400, None, long, sent) == ("max_seconds", "1400")
    assert refusals.refusal(400, None, "Invalid file format.", sent) is None
    assert refusals.refusal(500, "response_format", msg, sent) is None


def test_what_is_learned_and_stated_changes_the_request():
    """Learned refusals and the user's models: take away what the server does not take."""
    whisper = models.table("openai", "whisper-1")
    less = models.learned(whisper, [models.Item("response_format", "verbose_json")])
    assert less.timed is None
    assert models.ask(less, timed=True, prompt=True, seconds=5).response_format == "json"
    stated = models.with_stated(models.SAFE, ModelModel(formats=("verbose_json", "json")))
    assert stated.timed == "verbose_json"
    gone = [models.Item("response_format", "json"), models.Item("response_format", "text")]
    assert models.learned(models.SAFE, gone).formats == ()


def test_text_without_times_is_divided_into_cues_at_word_boundaries():
    """A span's text becomes cues of at most 84 characters over its sound, in order."""
    text = " ".join(f"word{n}" for n in range(60))
    segments = stitch.divide(text, 2.0, 20.0)
    assert all(len(s["text"]) <= stitch.CUE_CHARS for s in segments)
    assert " ".join(s["text"] for s in segments) == text
    assert segments[0]["start"] == 2.0
    assert segments[-1]["end"] == pytest.approx(20.0)
    assert all(a["end"] == pytest.approx(b["start"]) for a, b in itertools.pairwise(segments))
    cjk = stitch.divide("字" * 200, 0.0, 10.0)
    assert [len(s["text"]) for s in cjk] == [84, 84, 32]


# ------------------------------------------------------------------ every model, every format


@pytest.mark.parametrize("formats", FORMAT_SETS, ids="+".join)
@pytest.mark.parametrize("model", OPENAI_FILE_MODELS)
def test_every_model_gets_every_format_set_with_nothing_quarantined(setup, model, formats):
    """Each OpenAI model x the format sets users pick: every sidecar, nothing failed, and
    no request carrying what its model refuses, not even once."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        serve(setup, api, model=model, formats=formats, prompt="Names: Ada, Grace.")
        write_tones(setup.inbox / "call.wav", TONES[:3], 15.0)
        assert once(setup) == 0
    assert not (setup.inbox / "failed").exists()
    for fmt in formats:
        extension = "verbose.json" if fmt == "verbose_json" else fmt
        assert (setup.inbox / f"call.{extension}").stat().st_size > 0
    assert not refused(api)
    rules = OPENAI_MODELS[model]
    for upload in api.uploads:
        if upload.reply == "200":
            assert upload.fields.get("response_format", "json") in rules.formats
            assert ("prompt" in upload.fields) == rules.prompt
    if "srt" in formats:
        placed = cues((setup.inbox / "call.srt").read_text())
        assert hertz(" ".join(text for _, _, text in placed)) == [400, 500, 600]
        assert placed[-1][1] <= 15.0


def test_diarize_over_30_seconds_sends_chunking_strategy_auto_and_no_prompt(setup):
    """gpt-4o-transcribe-diarize: chunking_strategy=auto (the bare string) above 30 s,
    never a prompt; its diarized_json segments time the srt."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        serve(
            setup, api, model="gpt-4o-transcribe-diarize", formats=["txt", "srt"], prompt="Glossary"
        )
        write_tones(setup.inbox / "long.wav", TONES, SECONDS)
        write_tones(setup.inbox / "short.wav", TONES[:2], 12.0)
        assert once(setup) == 0
    by_name = {u.filename: u for u in api.uploads}
    assert by_name["long.wav"].fields["chunking_strategy"] == "auto"
    assert "chunking_strategy" not in by_name["short.wav"].fields
    assert all("prompt" not in u.fields for u in api.uploads)
    assert refused(api) == []
    placed = cues((setup.inbox / "long.srt").read_text())
    assert len(placed) == len(TONES)


# ------------------------------------------------------------------ models without timestamps


def test_srt_from_a_model_without_timestamps_has_cues_all_the_way_through(setup, events):
    """gpt-4o-mini-transcribe with [txt, srt]: short spans cut at pauses, sent in parallel
    as compressed audio, each span's text placed at its sound; txt alone is one upload."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        serve(setup, api, model="gpt-4o-mini-transcribe", formats=["txt", "srt"], align=False)
        setup.data["inboxes"].append({"path": str(setup.root / "plain"), "formats": ["txt"]})
        write_tones(setup.inbox / "meeting.wav", TONES, SECONDS)
        write_tones(setup.root / "plain" / "memo.wav", TONES, SECONDS)
        assert once(setup) == 0
    spans = [u for u in api.uploads if u.filename != "memo.wav"]
    assert len(spans) >= 3
    assert all(u.fields["response_format"] == "json" for u in api.uploads)
    wav = (setup.inbox / "meeting.wav").stat().st_size
    assert sum(u.size for u in spans) * 10 < wav
    placed = cues((setup.inbox / "meeting.srt").read_text())
    assert hertz(" ".join(text for _, _, text in placed)) == [t[2] for t in TONES]
    assert placed[0][0] == pytest.approx(TONES[0][0], abs=0.5)
    assert placed[-1][1] == pytest.approx(TONES[-1][1], abs=0.5)
    assert max(end - start for start, end, _ in placed) <= 30
    memo = [u for u in api.uploads if u.filename == "memo.wav"]
    assert len(memo) == 1
    assert memo[0].fields["response_format"] == "json"
    assert named(events, "audio.spans")


# ------------------------------------------------------------------ learning from refusals


def test_a_refused_format_is_learned_once_and_kept_across_a_restart(setup, events, capsys):
    """A server refusing verbose_json for whisper-1: one refused request for the pair, all
    files done with their srt, no attempt spent; a restarted daemon sends json at once."""
    strict = {**OPENAI_MODELS, "whisper-1": Rules(frozenset({"json", "text"}), translate=True)}
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True, models=strict) as api:
        serve(setup, api, model="whisper-1", formats=["txt", "srt"])
        for n in range(4):
            write_tones(setup.inbox / f"f{n}.wav", TONES[n : n + 2], 15.0 + 5 * n)
        assert once(setup) == 0
        assert refused(api) == ["400"]
        learned = named(events, "endpoint.learned")
        assert [(e["param"], e["value"]) for e in learned] == [("response_format", "verbose_json")]
        write_tones(setup.inbox / "after.wav", TONES[5:7], 40.0)
        before = len(api.uploads)
        assert once(setup) == 0
        assert len(api.uploads) > before
        assert all(u.reply == "200" for u in api.uploads[before:])
    assert not (setup.inbox / "failed").exists()
    for n in range(4):
        heard = hertz((setup.inbox / f"f{n}.srt").read_text())
        assert heard == [t[2] for t in TONES[n : n + 2]]
    assert {e["attempt"] for e in named(events, "upload.started")} == {1}
    assert not named(events, "upload.retrying")
    capsys.readouterr()
    assert status.status(setup.load()) == 0
    assert "whisper-1: response_format=verbose_json" in capsys.readouterr().out


def test_a_refused_prompt_is_learned_and_the_file_sent_again_without_it(setup, events):
    """A gateway model that refuses prompts: one refusal, then the same file without it."""
    no_prompt = {"alias": Rules(frozenset({"json"}), prompt=False)}
    with FakeAPI(api_key=API_KEY, models=no_prompt, kind="gateway") as api:
        setup.data["endpoints"]["local"]["kind"] = "gateway"
        serve(setup, api, model="alias", prompt="Vocabulary")
        make_wav(setup.inbox / "a.wav")
        make_wav(setup.inbox / "b.wav", freq=600)
        assert once(setup) == 0
    assert refused(api) == ["400"]
    assert [u.reply for u in api.uploads if "prompt" not in u.fields] == ["200", "200"]


def test_a_duration_limit_named_by_the_server_cuts_the_file_into_chunks(setup, events):
    """A 400 'longer than 40 seconds' is learned; the file goes again as chunks under it."""
    capped = {
        **OPENAI_MODELS,
        "whisper-1": Rules(frozenset({"json", "verbose_json"}), granularities=True, max_seconds=40),
    }
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True, models=capped) as api:
        serve(setup, api, model="whisper-1", formats=["txt", "srt"])
        write_tones(setup.inbox / "talk.wav", TONES, SECONDS)
        assert once(setup) == 0
    assert refused(api) == ["400"]
    assert all(u.seconds <= 40 for u in api.uploads if u.reply == "200")
    assert hertz((setup.inbox / "talk.txt").read_text()) == [t[2] for t in TONES]


def test_a_model_that_refuses_every_format_fails_once_files_naming_the_model(setup, events):
    """once: a model refusing json and text fails its files at once, not quarantined, exit 1;
    the event names the model and what it refused."""
    nothing = {**OPENAI_MODELS, "gpt-4o-transcribe": Rules(frozenset({"srt"}))}
    with FakeAPI(api_key=API_KEY, models=nothing) as api:
        serve(setup, api, model="gpt-4o-transcribe")
        make_wav(setup.inbox / "a.wav")
        assert once(setup) == 1
    assert refused(api) == ["400", "400"]
    failed = named(events, "file.failed")
    assert failed[0]["quarantined"] is False
    assert "gpt-4o-transcribe" in failed[0]["error"]
    assert "json, text" in failed[0]["error"]
    assert not (setup.inbox / "failed").exists()


def test_an_unknown_model_is_an_endpoint_error_not_a_quarantine(setup, events):
    """404 model_not_found: the file fails in once with the server's words, not quarantined."""
    with FakeAPI(api_key=API_KEY) as api:
        serve(setup, api, model="gpt-5-transcribe-typo")
        make_wav(setup.inbox / "a.wav")
        assert once(setup) == 1
    failed = named(events, "file.failed")
    assert "gpt-5-transcribe-typo" in failed[0]["error"]
    assert failed[0]["quarantined"] is False


def test_stated_capabilities_are_used_for_a_model_the_table_does_not_know(setup, events):
    """models: under the endpoint says an alias gives verbose_json: srt comes in one upload."""
    alias = {"house-whisper": Rules(frozenset({"json", "verbose_json"}), granularities=True)}
    with FakeAPI(api_key=API_KEY, models=alias, kind="gateway") as api:
        setup.data["endpoints"]["local"].update(
            kind="gateway", models={"house-whisper": {"formats": ["verbose_json", "json"]}}
        )
        serve(setup, api, model="house-whisper", formats=["srt"])
        make_wav(setup.inbox / "a.wav", seconds=2)
        assert once(setup) == 0
    assert [u.fields["response_format"] for u in api.uploads] == ["verbose_json"]
    assert json.loads(json.dumps(refused(api))) == []


def test_an_answer_cut_short_by_the_output_cap_is_sent_again_in_halves(setup, events):
    """A gpt-4o answer far shorter than its span's sound is flagged and the span sent again
    cut in two at a pause; the longer transcript is kept."""
    capped = {
        **OPENAI_MODELS,
        "gpt-4o-transcribe": Rules(frozenset({"json"}), output_tokens=10, usage="tokens"),
    }
    tones = [(5.0 * n, 5.0 * n + 4.0, 300 + 100 * n) for n in range(24)]
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True, models=capped) as api:
        serve(setup, api, model="gpt-4o-transcribe", formats=["txt"], chunk_seconds=120)
        setup.data["endpoints"]["local"]["max_upload_bytes"] = 1_000_000  # re-encoded
        write_tones(setup.inbox / "talk.wav", tones, 120.0)
        assert once(setup) == 0
    chunks = named(events, "audio.split")[0]["chunks"]
    assert len(named(events, "transcript.suspect_truncation")) == chunks
    assert len(api.uploads) == 3 * chunks  # each chunk, then its two halves
    heard = hertz((setup.inbox / "talk.txt").read_text())
    assert len(heard) == 10 * chunks  # each half cut at 10 words again, but twice the text
    assert heard[0] == 300
    assert heard[-1] >= 2100  # the last half was heard too


def test_check_config_refuses_a_translation_by_a_model_that_cannot_translate(setup):
    """task: translate on gpt-4o-transcribe is a config problem naming the key and the fix."""
    from dropscribe.errors import ConfigError

    setup.data["defaults"].update(model="gpt-4o-transcribe")
    setup.data["inboxes"][0]["rules"] = [{"folder": "en", "task": "translate"}]
    with pytest.raises(ConfigError) as caught:
        setup.load()
    [problem] = caught.value.problems
    assert problem.key == "inboxes[0].rules[0].task"
    assert problem.line is not None
    assert "whisper-1" in problem.message
    setup.data["inboxes"][0]["rules"][0]["model"] = "whisper-1"
    assert setup.load()


# ------------------------------------------------------------------ models of December 2026


def test_gpt_transcribe_gets_its_own_form_right_the_first_time(setup):
    """gpt-transcribe through the real process: one request, never refused, with the
    folder's language as languages[] and its vocabulary as keywords[] (no language,
    temperature or response_format, PROTOCOL.md 7.2); the length comes from usage.seconds."""
    from conftest import DaemonProcess

    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        serve(
            setup,
            api,
            model="gpt-transcribe",
            language="de",
            vocabulary=["Ada Lovelace", "Grace"],
            prompt="Ein Gespräch.",
            temperature=0.2,
            formats=["txt", "verbose_json"],
        )
        write_tones(setup.inbox / "call.wav", TONES[:2], 12.0)
        assert DaemonProcess(setup, command="once").wait(timeout=60) == 0
    (upload,) = api.uploads
    assert upload.reply == "200"
    assert upload.multi["languages[]"] == ["de"]
    assert upload.multi["keywords[]"] == ["Ada Lovelace", "Grace"]
    assert upload.fields["prompt"] == "Ein Gespräch."
    assert not {"language", "temperature", "response_format"} & set(upload.fields)
    answer = json.loads((setup.inbox / "call.verbose.json").read_text())
    assert answer["duration"] == 12
    assert answer["language"] == "de"


def test_the_vocabulary_goes_where_each_kind_takes_it(setup):
    """whisper-1 gets the vocabulary after its prompt; Mistral as context_bias words."""
    from dropscribe.transcribe import kinds
    from dropscribe.vocab.settings import FolderSettings

    settings = FolderSettings(
        endpoint="e", model="whisper-1", prompt="A call.", vocabulary=("Ada Lovelace", "Grace")
    )
    ask = models.ask(models.WHISPER_1, timed=False, prompt=True, seconds=5)
    assert kinds.openai_fields(settings, ask)["prompt"] == "A call. Ada Lovelace, Grace."
    assert kinds.context_bias("A call.", settings.vocabulary) == [
        "Ada",
        "Lovelace",
        "Grace",
        "A",
        "call",
    ]
    assert settings.shaping_hash() != settings.model_copy(update={"vocabulary": ()}).shaping_hash()


@pytest.mark.parametrize("formats", [["txt", "srt"], ["txt"]], ids="+".join)
def test_voxtral_3_never_gets_language_beside_timestamps(setup, formats):
    """Voxtral 3 refuses language beside timestamp_granularities (PROTOCOL.md 7.3): the
    first request is right, a folder that needs times (and cannot time German words on
    this machine) keeps them and lets the server detect the language, one that needs none
    keeps its language; word times are never asked for."""
    from conftest import DaemonProcess

    with FakeAPI(api_key=API_KEY, kind="mistral") as api:
        serve(setup, api, model="voxtral-mini-transcribe-3-0", language="de", formats=formats)
        setup.data["endpoints"]["local"]["kind"] = "mistral"
        make_wav(setup.inbox / "a.wav")
        first = DaemonProcess(setup, command="once")
        assert first.wait(timeout=60) == 0
        make_wav(setup.inbox / "b.wav", freq=500)
        second = DaemonProcess(setup, command="once")
        assert second.wait(timeout=60) == 0
    assert [u.reply for u in api.uploads] == ["200", "200"]
    assert not first.named("upload.refused")
    assert not second.named("upload.refused")
    assert not (setup.inbox / "failed").exists()
    for upload in api.uploads:
        if "srt" in formats:
            assert upload.fields["timestamp_granularities"] == "segment"
            assert "language" not in upload.fields
        else:
            assert upload.fields["language"] == "de"
            assert "timestamp_granularities" not in upload.fields
    assert all(u.fields.get("timestamp_granularities") != "word" for u in api.uploads)
    if "srt" in formats:
        assert (setup.inbox / "b.srt").read_text().startswith("1\n00:00:00,000 --> 00:00:03,250")


def two_folders(setup, api: FakeAPI) -> None:
    """One inbox on whisper-1 and one on gpt-transcribe, both on the same endpoint."""
    other = setup.root / "other"
    other.mkdir()
    serve(setup, api, model="whisper-1", formats=["txt"])
    setup.data["inboxes"].append({"path": str(other), "model": "gpt-transcribe"})
    setup.data["endpoints"]["local"]["kind"] = "openai"


def test_a_gone_model_waits_loudly_while_other_models_go_on(setup):
    """A gateway's 503 naming the model (PROTOCOL.md 7.1): one model.gone event, the file
    waits in place (no retry loop, no quarantine), the other folder's model goes on, and
    a reload tries the gone model again at once; status lists it while it is gone."""
    import signal
    import subprocess
    import sys

    from conftest import DaemonProcess, wait_for

    with FakeAPI(api_key=API_KEY) as api:
        two_folders(setup, api)
        api.gone["whisper-1"] = "503"
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            make_wav(setup.inbox / "old.wav")
            make_wav(setup.root / "other" / "new.wav", freq=500)
            daemon.wait_event("model.gone")
            wait_for((setup.root / "other" / "new.txt").exists, what="other model")
            shown = subprocess.run(
                [sys.executable, "-m", "dropscribe", "status", "-c", str(setup.config_path)],
                capture_output=True,
                text=True,
                check=True,
            ).stdout
            assert "no available channels for model whisper-1" in shown
            assert not (setup.inbox / "old.txt").exists()
            api.gone.clear()  # back (or: the person changed something and reloaded)
            daemon.signal(signal.SIGHUP)
            wait_for((setup.inbox / "old.txt").exists, what="the file, after reload")
            daemon.wait_event("model.back")
        finally:
            daemon.signal(signal.SIGTERM)
            daemon.wait()
    gone = daemon.named("model.gone")
    assert len(gone) == 1
    assert gone[0]["model"] == "whisper-1"
    assert "set model:" in gone[0]["action"]
    old = [u for u in api.uploads if u.fields.get("model") == "whisper-1"]
    assert [u.reply for u in old] == ["503", "200"]
    assert not (setup.inbox / "failed").exists()


def test_once_fails_a_gone_models_files_fast_and_keeps_them(setup):
    """In once, a model that answers 404 model_not_found fails its files at once (one
    request, exit 1), never quarantines them, and the other model's file is done."""
    from conftest import DaemonProcess

    with FakeAPI(api_key=API_KEY) as api:
        two_folders(setup, api)
        api.gone["whisper-1"] = "404"
        for n in range(3):
            make_wav(setup.inbox / f"old{n}.wav", freq=300 + 50 * n)
        make_wav(setup.root / "other" / "new.wav", freq=500)
        daemon = DaemonProcess(setup, command="once")
        assert daemon.wait(timeout=60) == 1
    assert len(daemon.named("model.gone")) == 1
    assert len([u for u in api.uploads if u.fields.get("model") == "whisper-1"]) == 1
    assert (setup.root / "other" / "new.txt").exists()
    assert sorted(p.name for p in setup.inbox.iterdir()) == ["old0.wav", "old1.wav", "old2.wav"]


def test_the_radar_reads_shutdown_dates_and_says_them_everywhere(setup):
    """At start the daemon asks GET /models: a model in use with a shutdown_date gets a
    model.retiring warning with its days left, a metric, and a line in status; a model
    without one (gpt-transcribe: null) gets none. check-config says the announced date."""
    import datetime as dt
    import signal
    import subprocess
    import sys
    import urllib.request

    from conftest import DaemonProcess, wait_for

    with FakeAPI(api_key=API_KEY) as api:
        two_folders(setup, api)
        setup.data["metrics"] = {"host": "127.0.0.1", "port": 0}
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("model.retiring")
            (url,) = [e["url"] for e in daemon.named("metrics.listening")]
            text = wait_for(
                lambda: (
                    body
                    if "dropscribe_model_shutdown"
                    in (body := urllib.request.urlopen(url, timeout=5).read().decode())
                    else None
                ),
                what="the shutdown metric",
            )
        finally:
            daemon.signal(signal.SIGTERM)
            daemon.wait()
        checked = subprocess.run(
            [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.config_path)],
            check=False,
            capture_output=True,
            text=True,
            env={**__import__("os").environ, **setup.env},
        )
        shown = subprocess.run(
            [sys.executable, "-m", "dropscribe", "status", "-c", str(setup.config_path)],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    assert api.listings == 1
    (warning,) = daemon.named("model.retiring")
    assert (warning["model"], warning["shutdown_date"], warning["source"]) == (
        "whisper-1",
        "2027-02-26",
        "server",
    )
    today = dt.datetime.now(dt.UTC).date()
    assert warning["days_left"] == (dt.date(2027, 2, 26) - today).days
    assert "gpt-transcribe" in warning["action"]
    from prometheus_client.parser import text_string_to_metric_families

    samples = {
        sample.labels["model"]: sample.value
        for family in text_string_to_metric_families(text)
        if family.name == "dropscribe_model_shutdown_timestamp_seconds"
        for sample in family.samples
    }
    assert samples == {"whisper-1": dt.datetime(2027, 2, 26, tzinfo=dt.UTC).timestamp()}
    assert "model whisper-1 on" in shown
    assert "shuts down 2027-02-26" in shown
    assert checked.returncode == 0, checked.stderr
    assert "whisper-1 on local shuts down 2027-02-26" in checked.stderr
    assert "gpt-transcribe on" not in checked.stderr


def test_a_translation_with_subtitles_never_sends_timestamp_granularities(setup):
    """/audio/translations has no timestamp_granularities (the test server refuses it as
    OpenAI does): a translated folder with srt gets one request and its segments' times."""
    from conftest import DaemonProcess

    with FakeAPI(api_key=API_KEY) as api:
        serve(setup, api, model="whisper-1", task="translate", formats=["txt", "srt"])
        setup.data["endpoints"]["local"]["kind"] = "openai"
        make_wav(setup.inbox / "talk.wav")
        assert DaemonProcess(setup, command="once").wait(timeout=60) == 0
    (upload,) = api.uploads
    assert upload.path == "/v1/audio/translations"
    assert upload.reply == "200"
    assert "timestamp_granularities[]" not in upload.fields
    assert (setup.inbox / "talk.srt").read_text().startswith("1\n00:00:00,000 --> ")


def fish_answer(upload) -> dict:
    """Fish Audio's model behind the whisper-1 alias: speaker markers and event cues in
    its text (PROTOCOL.md 7.1)."""
    return {
        "task": "transcribe",
        "language": "english",
        "duration": 4.0,
        "text": "<|speaker:0|>Hello there. [laughter] <|speaker:1|>Hi, how are you?",
        "segments": [
            {"id": 0, "start": 0.0, "end": 2.0, "text": "<|speaker:0|>Hello there. [laughter]"},
            {"id": 1, "start": 2.0, "end": 4.0, "text": "<|speaker:1|>Hi, how are you?"},
        ],
    }


def test_a_remapped_models_markup_becomes_turns_and_stays_out_of_subtitles(setup):
    """<|speaker:N|> markers become speaker turns (A, B), never text; a [laughter] cue is
    kept in the json but not read out in the subtitles."""
    from conftest import DaemonProcess

    with FakeAPI(api_key=API_KEY, answer=fish_answer) as api:
        serve(setup, api, model="whisper-1", formats=["txt", "srt", "vtt", "verbose_json"])
        make_wav(setup.inbox / "chat.wav")
        assert DaemonProcess(setup, command="once").wait(timeout=60) == 0
    outputs = {ext: (setup.inbox / f"chat.{ext}").read_text() for ext in ("txt", "srt", "vtt")}
    assert not any("<|" in text for text in outputs.values()), outputs
    assert "[laughter]" not in outputs["srt"]
    assert "[laughter]" not in outputs["vtt"]
    assert "Hello there." in outputs["srt"]
    full = json.loads((setup.inbox / "chat.verbose.json").read_text())
    assert [s["speaker"] for s in full["segments"]] == ["A", "B"]
    assert full["segments"][0]["text"] == "Hello there. [laughter]"
    assert "<|" not in full["text"]


def test_check_config_refuses_a_model_stated_to_answer_only_subtitles(setup):
    """A models: statement that a model answers only srt is refused at check-config with
    file:line and the fix, instead of quarantining every file with 'answer is not JSON'."""
    import subprocess
    import sys

    setup.data["endpoints"]["local"]["models"] = {"house-srt": {"formats": ["srt"]}}
    setup.data["defaults"]["model"] = "house-srt"
    checked = subprocess.run(
        [sys.executable, "-m", "dropscribe", "check-config", "-c", str(setup.write())],
        capture_output=True,
        text=True,
        check=False,
        env={**__import__("os").environ, **setup.env},
    )
    assert checked.returncode == 2, checked.stderr
    (line,) = [x for x in checked.stderr.splitlines() if "house-srt" in x]
    assert f"{setup.config_path}:" in line
    assert ".model: model 'house-srt'" in line
    assert "add json or text to endpoints.local.models.house-srt.formats" in line
