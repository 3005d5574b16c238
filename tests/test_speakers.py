"""Who said what: speaker labels from OpenAI, Mistral, Together and whisper-asr-webservice,
known voices by name, and clear config errors where an endpoint cannot label speakers.

A voice, to the test server, is a tone's pitch: two pitches taking turns are two people.
"""

from __future__ import annotations

import json
import re
import threading
from urllib.parse import parse_qs

import pytest

from conftest import API_KEY, write_tones
from dropscribe.errors import ConfigError
from dropscribe.service import Daemon
from fakeapi import FakeAPI, tone_answer

# Two people taking turns: 440 Hz is the first to speak, 660 Hz the second.
TURNS = [(1.0, 3.0, 440), (4.0, 6.0, 660), (7.0, 9.0, 440), (10.0, 12.0, 660)]
FORMATS = ["txt", "srt", "vtt", "json", "md"]


def run(setup, api: FakeAPI, kind: str, model: str, **settings) -> None:
    setup.api = api
    setup.data["endpoints"]["local"] = {
        "kind": kind,
        # whisper-asr-webservice serves /asr at the root; the others under /v1
        "base_url": api.root_url if kind == "asr" else api.base_url,
        "api_key_env": "DROPSCRIBE_TEST_KEY",
    }
    setup.data["defaults"].update(
        {"model": model, "formats": FORMATS, "speakers": True, **settings}
    )
    write_tones(setup.inbox / "call.wav", TURNS, 13.0)
    assert Daemon(setup.load()).run(threading.Event(), once=True) == 0
    assert [u.reply for u in api.uploads] == ["200"]


def check_sidecars(setup, first: str = "A", second: str = "B") -> None:
    """Every sidecar says who speaks, with one label per voice."""
    txt = (setup.inbox / "call.txt").read_text()
    assert txt == (
        f"{first}: tone 440\n\n{second}: tone 660\n\n{first}: tone 440\n\n{second}: tone 660\n"
    )
    srt = (setup.inbox / "call.srt").read_text()
    assert re.findall(r"\n(\w+): tone (\d+)\n", srt) == [
        (first, "440"),
        (second, "660"),
        (first, "440"),
        (second, "660"),
    ]
    vtt = (setup.inbox / "call.vtt").read_text()
    assert re.findall(r"<v (\w+)>tone (\d+)</v>", vtt) == re.findall(r"\n(\w+): tone (\d+)\n", srt)
    segments = json.loads((setup.inbox / "call.json").read_text())["segments"]
    assert [s["speaker"] for s in segments] == [first, second, first, second]
    md = (setup.inbox / "call.md").read_text()
    assert f"**{first}:** tone 440\n\n**{second}:** tone 660" in md


def test_openai_diarize_labels_every_sidecar(setup):
    """gpt-4o-transcribe-diarize: diarized_json asked for, no prompt; A and B in every sidecar."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        run(setup, api, "openai", "gpt-4o-transcribe-diarize", prompt="Glossary")
    (upload,) = api.uploads
    assert upload.fields["response_format"] == "diarized_json"
    assert "prompt" not in upload.fields
    check_sidecars(setup)


def test_mistral_diarize_and_context_bias_without_response_format_or_prompt(setup):
    """kind: mistral sends diarize=true and the prompt's words as context_bias, no
    response_format or prompt (which Mistral refuses); speaker_1/speaker_0 become A/B."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True, kind="mistral") as api:
        run(setup, api, "mistral", "voxtral-mini-latest", prompt="Ana, Björn: dropscribe.")
    (upload,) = api.uploads
    assert upload.fields["diarize"] == "true"
    assert upload.multi["context_bias"] == ["Ana", "Björn", "dropscribe"]
    assert not {"response_format", "prompt", "timestamp_granularities[]"} & set(upload.fields)
    check_sidecars(setup)


def test_asr_webservice_gets_audio_file_and_query_options_with_speaker_counts(setup):
    """kind: asr posts audio_file to /asr with output=json, diarize and min/max_speakers
    in the query; SPEAKER_00/SPEAKER_01 become A/B, on words too."""
    with FakeAPI(answer=tone_answer, listening=True, kind="asr") as api:
        run(setup, api, "asr", "large-v3", speakers={"min": 2, "max": 3}, language="en")
    (upload,) = api.uploads
    assert upload.file_field == "audio_file"
    path, _, query = upload.path.partition("?")
    assert path == "/asr"
    options = {k: v[0] for k, v in parse_qs(query).items()}
    assert options == {
        "output": "json",
        "task": "transcribe",
        "word_timestamps": "true",
        "vad_filter": "true",
        "language": "en",
        "diarize": "true",
        "min_speakers": "2",
        "max_speakers": "3",
    }
    check_sidecars(setup)


def test_together_speaker_segments_with_counts(setup):
    """kind: together adds diarize=true and the counts to OpenAI's form; speaker_segments win."""
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True, kind="together") as api:
        run(setup, api, "together", "openai/whisper-large-v3", speakers={"max": 2})
    (upload,) = api.uploads
    assert (upload.fields["diarize"], upload.fields["max_speakers"]) == ("true", "2")
    assert "min_speakers" not in upload.fields
    check_sidecars(setup)


def test_known_voices_are_sent_as_data_urls_and_come_back_by_name(setup):
    """voices/Ana.wav and voices/Björn.wav go as known_speaker_names[] and data URLs;
    the sidecars call those people by name."""
    voices = setup.root / "voices"
    write_tones(voices / "Ana.wav", [(0.0, 3.0, 440)], 3.0)
    write_tones(voices / "Björn.wav", [(0.0, 3.0, 660)], 3.0)
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        run(setup, api, "openai", "gpt-4o-transcribe-diarize", voices=str(voices))
    (upload,) = api.uploads
    assert upload.multi["known_speaker_names[]"] == ["Ana", "Björn"]
    assert all(
        u.startswith("data:audio/wav;base64,") for u in upload.multi["known_speaker_references[]"]
    )
    check_sidecars(setup, "Ana", "Björn")


@pytest.mark.parametrize(
    ("endpoint", "model", "extra", "words"),
    [
        ({"kind": "local"}, "tiny.en", {}, "kind: local cannot label speakers: pyannote"),
        ({"kind": "groq"}, "whisper-large-v3", {}, "(kind: groq) gives no speaker labels"),
        ({"kind": "openai"}, "whisper-1", {}, "'whisper-1' gives no speaker labels"),
        (
            {"kind": "mistral"},
            "voxtral-mini-latest",
            {"speakers": {"min": 2}},
            "(kind: mistral) takes no speaker count",
        ),
        (
            {"kind": "asr"},
            "large-v3",
            {"voices": "voices"},
            "(kind: asr) takes no known voices",
        ),
        (
            {"kind": "openai"},
            "gpt-4o-transcribe-diarize",
            {"voices": "voices"},
            "Long.wav is 12.0 s long",
        ),
    ],
)
def test_speakers_an_endpoint_cannot_give_are_config_errors(setup, endpoint, model, extra, words):
    """speakers: where the endpoint gives no labels, counts or voices: one clear problem, at load."""
    write_tones(setup.root / "voices" / "Long.wav", [(0.0, 12.0, 440)], 12.0)
    setup.data["endpoints"]["local"] = {
        **endpoint,
        "base_url": "http://127.0.0.1:9/v1",
        "api_key_env": "DROPSCRIBE_TEST_KEY",
    }
    setup.data["defaults"].update({"model": model, "speakers": True, **extra})
    if "voices" in extra:
        setup.data["defaults"]["voices"] = str(setup.root / "voices")
    with pytest.raises(ConfigError) as info:
        setup.load()
    found = [p for p in info.value.problems if words in str(p)]
    assert found, [str(p) for p in info.value.problems]
    assert found[0].key.endswith(("speakers", "voices")), str(found[0])
    assert found[0].line is not None


@pytest.mark.parametrize(
    ("kind", "model"),
    [
        ("openai", "gpt-4o-transcribe-diarize"),
        ("mistral", "voxtral-mini-latest"),
        ("asr", "large-v3"),
        ("together", "openai/whisper-large-v3"),
    ],
)
def test_a_long_recording_keeps_one_label_per_voice_across_chunks(setup, kind, model):
    """Cut into chunks, each answered with labels that restart: on OpenAI the first chunk
    goes alone and lends its voices to the others; elsewhere chunks overlap by 20 s and
    labels are matched there. Either way, every sidecar keeps A and B."""
    # Two voices over 100 s, two turns each, in chunks of 15-20 s: some chunks start
    # with the second voice, which a server that restarts its labels calls A.
    turns = [(5.0 * n + 1.0, 5.0 * n + 4.0, (440, 440, 660, 660)[n % 4]) for n in range(20)]
    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True, kind=kind) as api:
        setup.api = api
        setup.data["endpoints"]["local"] = {
            "kind": kind,
            "base_url": api.root_url if kind == "asr" else api.base_url,
            "api_key_env": "DROPSCRIBE_TEST_KEY",
            "max_duration_seconds": 40,
        }
        setup.data["defaults"].update(
            {"model": model, "formats": ["txt", "json"], "speakers": True, "chunk_seconds": 30}
        )
        write_tones(setup.inbox / "long.wav", turns, 102.0)
        assert Daemon(setup.load()).run(threading.Event(), once=True) == 0
    first, *later = sorted(api.uploads, key=lambda u: u.at)
    assert len(later) >= 3, "the recording was cut into chunks"
    if kind == "openai":
        assert "known_speaker_names[]" not in first.multi
        assert all(u.multi["known_speaker_names[]"] == ["Speaker A", "Speaker B"] for u in later)
    else:
        sent = sum(u.seconds for u in api.uploads)
        assert sent > 102 + 15 * (len(api.uploads) - 2), "chunks overlap by 20 s"
    segments = json.loads((setup.inbox / "long.json").read_text())["segments"]
    said = [(s["speaker"], s["text"].strip()) for s in segments]
    assert len(said) == 20
    assert set(said) == {("A", "tone 440"), ("B", "tone 660")}
    txt = (setup.inbox / "long.txt").read_text()
    assert txt.startswith("A: tone 440\n\ntone 440\n\nB: tone 660\n")


def test_explain_says_the_first_chunk_goes_alone_for_stable_labels(setup, capsys):
    """dropscribe explain, for a speakers folder on OpenAI: why a long file's first chunk runs alone."""
    from dropscribe.commands import explain

    setup.data["defaults"].update({"model": "gpt-4o-transcribe-diarize", "speakers": True})
    write_tones(setup.inbox / "call.wav", TURNS, 13.0)
    explain.explain(setup.load(), setup.inbox / "call.wav")
    out = capsys.readouterr().out
    assert "the first is transcribed alone" in out
    assert "speakers: true" in out


def test_a_voices_folder_inside_the_inbox_is_never_transcribed(setup):
    """voices: inside an inbox: the clips are references, not recordings to transcribe."""
    from dropscribe.config import rules

    write_tones(setup.inbox / "voices" / "Ana.wav", [(0.0, 3.0, 440)], 3.0)
    setup.data["defaults"].update(
        {
            "model": "gpt-4o-transcribe-diarize",
            "speakers": True,
            "voices": str(setup.inbox / "voices"),
        }
    )
    cfg = setup.load()
    clip = setup.inbox / "voices" / "Ana.wav"
    assert (
        rules.ignore_reason(cfg.inboxes[0], clip, rules.excluded_dirs(cfg)) == "dropscribe output"
    )


def test_the_test_server_refuses_known_voices_as_openai_does(tmp_path):
    """The stand-in is as strict as PROTOCOL.md 6.1: clips of 2-10 s, at most four, names and
    references in pairs, and only for the diarize model."""
    import base64

    import httpx

    def clip(seconds: float) -> str:
        path = write_tones(tmp_path / f"{seconds}.wav", [(0.0, seconds, 440)], seconds)
        return "data:audio/wav;base64," + base64.b64encode(path.read_bytes()).decode()

    audio = write_tones(tmp_path / "call.wav", TURNS, 13.0).read_bytes()

    def post(model: str, names: list[str], refs: list[str]) -> httpx.Response:
        data = {
            "model": model,
            "response_format": "diarized_json" if "diarize" in model else "json",
            "known_speaker_names[]": names,
            "known_speaker_references[]": refs,
        }
        return httpx.post(
            f"{api.base_url}/audio/transcriptions",
            data=data,
            files={"file": ("call.wav", audio, "audio/wav")},
            headers={"Authorization": f"Bearer {API_KEY}"},
        )

    with FakeAPI(api_key=API_KEY, answer=tone_answer, listening=True) as api:
        ok = post("gpt-4o-transcribe-diarize", ["Ana"], [clip(3.0)])
        too_long = post("gpt-4o-transcribe-diarize", ["Ana"], [clip(12.0)])
        unpaired = post("gpt-4o-transcribe-diarize", ["Ana", "Bo"], [clip(3.0)])
        whisper = post("whisper-1", ["Ana"], [clip(3.0)])
    assert ok.status_code == 200
    assert ok.json()["segments"][0]["speaker"] == "Ana"
    for refused, param in (
        (too_long, "known_speaker_references"),
        (unpaired, "known_speaker_names"),
        (whisper, "known_speaker_names"),
    ):
        assert refused.status_code == 400
        assert refused.json()["error"]["param"] == param
