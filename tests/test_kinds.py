"""Every kind of endpoint, each against the test server emulating that kind's quirks."""

from __future__ import annotations

import json

import pytest

from conftest import API_KEY, make_wav, named, wait_for
from dropscribe.transcribe.limiter import Limiter
from fakeapi import OPENAI_MODELS, FakeAPI, Reply


@pytest.fixture
def kind_setup(setup):
    """Point the test config at a FakeAPI of a given kind."""

    def use(api: FakeAPI, kind: str, base_url: str | None = None, **endpoint):
        setup.data["endpoints"]["local"].update(
            kind=kind, base_url=base_url or api.base_url, **endpoint
        )
        setup.api = api
        return setup

    return use


def run(setup, events, *names, done=None):
    for n, name in enumerate(names):
        make_wav(setup.inbox / name, freq=300 + 50 * n)
    with setup.daemon():
        wait_for(
            lambda: len(named(events, "file.done")) >= (done or len(names)),
            what="files done",
            timeout=30,
        )


def test_azure_classic_deployment_url_with_api_key_header(kind_setup, events):
    """azure: /openai/deployments/MODEL/audio/...?api-version=..., key in api-key, no model field."""
    deployments = {"my-whisper": OPENAI_MODELS["whisper-1"]}  # the resource's one deployment
    with FakeAPI(api_key=API_KEY, kind="azure", models=deployments) as api:
        setup = kind_setup(api, "azure", base_url=api.root_url)
        setup.data["defaults"].update(model="my-whisper", formats=["txt", "srt"])
        run(setup, events, "a.wav")
    up = api.uploads[0]
    assert up.path == "/openai/deployments/my-whisper/audio/transcriptions?api-version=2024-10-21"
    assert up.headers["api-key"] == API_KEY
    assert "authorization" not in up.headers
    assert "model" not in up.fields
    assert (setup.inbox / "a.srt").read_text().startswith("1\n")


def test_azure_v1_url(kind_setup, events):
    """azure with api_version: v1 posts to /openai/v1/audio/... with the deployment as model."""
    with FakeAPI(api_key=API_KEY, kind="azure") as api:
        setup = kind_setup(api, "azure", base_url=api.root_url, api_version="v1")
        run(setup, events, "b.wav")
    assert api.uploads[0].path == "/openai/v1/audio/transcriptions"
    assert api.uploads[0].fields["model"] == "whisper-1"


def test_groq_srt_and_vtt_come_from_verbose_json(kind_setup, events):
    """groq has no srt/vtt formats: we ask for verbose_json and render them; translate sends en."""
    with FakeAPI(api_key=API_KEY, kind="groq") as api:
        setup = kind_setup(api, "groq")
        setup.data["defaults"].update(model="whisper-large-v3", formats=["srt", "vtt"])
        setup.data["inboxes"][0]["rules"] = [{"folder": "tr", "task": "translate"}]
        make_wav(setup.inbox / "tr" / "t.wav", freq=900)
        run(setup, events, "g.wav", done=2)
    fields = {u.filename: u.fields for u in api.uploads}
    assert fields["g.wav"]["response_format"] == "verbose_json"
    assert fields["t.wav"]["language"] == "en"
    assert (setup.inbox / "g.vtt").read_text().startswith("WEBVTT\n\n00:00:00.000 --> ")


def test_speaches_bad_key_is_403_detail_and_pauses(kind_setup, events):
    """speaches answers a bad key with 403 {"detail": ...}: the endpoint pauses, file kept."""
    with FakeAPI(api_key="right-key", kind="speaches") as api:
        setup = kind_setup(api, "speaches")
        setup.data["defaults"]["model"] = "Systran/faster-distil-whisper-large-v3"
        make_wav(setup.inbox / "s.wav")
        with setup.daemon():
            wait_for(lambda: named(events, "endpoint.paused"), what="pause")
    paused = named(events, "endpoint.paused")[0]
    assert (paused["status"], paused["reason"]) == (403, "HTTP 403: Invalid API key")
    assert api.uploads[0].fields["model"] == "Systran/faster-distil-whisper-large-v3"
    assert (setup.inbox / "s.wav").exists()


def test_localai_loading_503_translate_flag_and_upload_limit(kind_setup, events):
    """localai: 503+Retry-After while loading is waited out; translate is a flag; a file
    over the upload limit is re-encoded to fit, never sent as it is."""
    with FakeAPI(kind="localai", loading=1, upload_limit=200_000) as api:
        setup = kind_setup(api, "localai", max_upload_bytes=200_000)
        setup.data["inboxes"][0]["rules"] = [{"folder": "tr", "task": "translate"}]
        make_wav(setup.inbox / "tr" / "fr.wav")
        make_wav(setup.inbox / "big.wav", seconds=8.0)  # 256 KB: over the limit
        with setup.daemon():
            wait_for(lambda: len(named(events, "file.done")) == 2, what="both done", timeout=30)
    translated = next(u for u in api.uploads if u.reply == "200" and "translate" in u.fields)
    assert translated.path == "/v1/audio/transcriptions"
    assert translated.fields["translate"] == "true"
    assert api.uploads[0].reply == "503"
    assert translated.at - api.uploads[0].at >= 1.0, "Retry-After honoured"
    assert "over the 0.2 MiB" in named(events, "audio.reencoding")[0]["reason"]
    assert all(u.filename != "big.wav" for u in api.uploads), "never sent as it is"
    assert [u.size < 200_000 for u in api.uploads if u.filename == "0000.ogg"] == [True]


def test_a_413_below_the_configured_limit_re_encodes_instead_of_failing(setup, api, events):
    """A server (or a gateway before it) with a lower limit than max_upload_bytes
    answers 413: the same bytes are never sent again, the file is re-encoded into
    compressed chunks, and those get through."""
    api.upload_limit = 200_000
    make_wav(setup.inbox / "big.wav", seconds=8.0)  # 256 KB
    with setup.daemon():
        wait_for(
            lambda: named(events, "file.done") or named(events, "file.failed"),
            30,
            what="the end of big.wav",
        )
    assert not named(events, "file.failed")
    assert [(u.filename, u.reply) for u in api.uploads] == [("big.wav", "413"), ("0000.ogg", "200")]
    assert "HTTP 413" in named(events, "audio.reencoding")[0]["reason"]
    assert (setup.inbox / "big.txt").exists()


def test_vllm_string_duration_and_integer_error_codes(kind_setup, events):
    """vllm: verbose_json's duration is a string; errors carry integer codes."""

    def answer(upload):
        return {
            "text": "hi",
            "language": "en",
            "duration": "2.5",
            "segments": [{"id": 0, "start": 0.0, "end": 2.5, "text": "hi"}],
        }

    with FakeAPI(kind="vllm", answer=answer) as api:
        api.script.append(
            Reply(400, {"error": {"message": "bad audio", "type": "BadRequest", "code": 400}})
        )
        setup = kind_setup(api, "vllm")
        setup.data["defaults"]["formats"] = ["verbose_json"]
        setup.data["workers"] = 1
        make_wav(setup.inbox / "first.wav")
        run(setup, events, "second.wav")
    assert named(events, "file.failed")[0]["error"] == "HTTP 400: bad audio"
    verbose = json.loads((setup.inbox / "second.verbose.json").read_text())
    assert verbose["duration"] == 2.5


def test_whispercpp_inference_path_language_auto_and_translate_flag(kind_setup, events):
    """whispercpp: /inference, no model field, language=auto unless set, translate=true."""
    with FakeAPI(kind="whispercpp") as api:
        setup = kind_setup(api, "whispercpp", base_url=api.root_url)
        setup.data["defaults"]["formats"] = ["txt", "srt"]
        setup.data["inboxes"][0]["rules"] = [{"folder": "tr", "task": "translate"}]
        make_wav(setup.inbox / "tr" / "x.wav", freq=800)
        run(setup, events, "w.wav", done=2)
    fields = {u.filename: u.fields for u in api.uploads}
    assert {u.path for u in api.uploads} == {"/inference"}
    assert fields["w.wav"]["language"] == "auto"
    assert "model" not in fields["w.wav"]
    assert "timestamp_granularities[]" not in fields["w.wav"]
    assert fields["x.wav"]["translate"] == "true"


def test_gateway_html_errors_and_dropped_fields(kind_setup, events):
    """gateway: an HTML 502 is retried; a proxy that drops timestamps still yields an srt."""
    with FakeAPI(kind="gateway", answer=lambda upload: {"text": "no segments here"}) as api:
        api.script.append(
            Reply(502, "<html><title>502 Bad Gateway</title></html>", content_type="text/html")
        )
        setup = kind_setup(api, "gateway")
        setup.data["defaults"]["formats"] = ["srt"]
        run(setup, events, "gw.wav")
    assert named(events, "upload.failed")[0]["error"] == "HTTP 502: 502 Bad Gateway"
    # No duration either: the text is timed at 15 characters a second.
    assert (setup.inbox / "gw.srt").read_text() == (
        "1\n00:00:00,000 --> 00:00:01,067\nno segments here\n"
    )


def test_rate_limits_halve_concurrency_then_it_ramps_back():
    """A 429 halves the uploads allowed at once (not below 1); successes add them back one by one."""
    limiter = Limiter(4)
    assert limiter.throttled() == 2
    assert limiter.throttled() == 1
    assert limiter.throttled() is None
    assert limiter.acquire(0)
    assert not limiter.acquire(0), "one at a time while throttled"
    limiter.release()
    assert limiter.succeeded() == 2
    assert [limiter.succeeded() for _ in range(2)] == [None, 3]
    assert [limiter.succeeded() for _ in range(3)] == [None, None, 4]
    assert limiter.succeeded() is None


def test_429_reduces_concurrency_in_the_daemon(setup, events):
    """The daemon logs a lower limit after a 429 and raises it again as uploads succeed."""
    from fakeapi import openai_error

    setup.data["endpoints"]["local"].update(max_concurrency=4, backoff_max=0.1)
    setup.api.script.append(openai_error(429, "Rate limit reached", code="rate_limit_exceeded"))
    run(setup, events, *(f"c{n}.wav" for n in range(10)))
    changes = [e["limit"] for e in named(events, "endpoint.concurrency")]
    assert changes[0] == 2
    assert changes[1:3] == [3, 4]


def test_mistral_form_has_no_response_format_or_prompt_and_its_422_is_readable(kind_setup, events):
    """mistral: model, timestamp_granularities=segment and context_bias only; a 422 of
    Mistral's shape is reported as 'body.<field>: <msg>', not as raw JSON."""
    from fakeapi import Reply

    with FakeAPI(api_key=API_KEY, kind="mistral") as api:
        setup = kind_setup(api, "mistral")
        setup.data["defaults"].update(
            model="voxtral-mini-latest", prompt="Ana Björn", formats=["txt", "srt"]
        )
        api.script.append(
            Reply(
                422,
                {
                    "object": "error",
                    "message": {
                        "detail": [
                            {
                                "type": "value_error",
                                "loc": ["body", "context_bias"],
                                "msg": "Value error, too many items",
                                "input": "json",
                            }
                        ]
                    },
                    "type": "invalid_request_error",
                    "param": None,
                    "code": None,
                },
            )
        )
        run(setup, events, "m.wav", "n.wav", done=1)
    ok = [u for u in api.uploads if u.reply == "200"]
    assert ok, [u.reply for u in api.uploads]
    assert set(ok[0].multi) == {"model", "timestamp_granularities", "context_bias"}
    assert ok[0].multi["context_bias"] == ["Ana", "Björn"]
    failed = named(events, "upload.failed")
    assert failed[0]["error"] == "HTTP 422: body.context_bias: Value error, too many items"


def test_asr_translation_goes_in_the_query_and_a_wrong_route_is_a_clear_404(kind_setup, events):
    """asr: task=translate in the query, audio as audio_file; its answer's segments time the srt."""
    with FakeAPI(kind="asr") as api:
        setup = kind_setup(api, "asr", base_url=api.root_url)
        setup.data["defaults"].update(model="large-v3", task="translate", formats=["txt", "srt"])
        run(setup, events, "a.wav")
    (upload,) = api.uploads
    assert upload.path.startswith("/asr?")
    assert "task=translate" in upload.path
    assert upload.file_field == "audio_file"
    assert (setup.inbox / "a.srt").read_text().startswith("1\n00:00:00,000 --> ")


def test_a_mistral_refusal_naming_a_field_it_never_gets_is_not_learned(kind_setup, events):
    """A 422 that names response_format (never sent to Mistral) fails that file only: nothing
    is learned about the model and the endpoint stays open for the next file."""
    from fakeapi import Reply

    with FakeAPI(api_key=API_KEY, kind="mistral") as api:
        setup = kind_setup(api, "mistral")
        setup.data["defaults"].update(model="voxtral-mini-latest", formats=["txt"])
        detail = {
            "type": "extra_forbidden",
            "loc": ["body", "response_format"],
            "msg": "Extra inputs are not permitted",
        }
        api.script.append(
            Reply(
                422,
                {
                    "object": "error",
                    "message": {"detail": [detail]},
                    "type": "invalid_request_error",
                },
            )
        )
        run(setup, events, "m.wav", "n.wav", done=1)
    assert not named(events, "endpoint.learned")
    assert not named(events, "endpoint.paused")
    assert named(events, "file.failed")[0]["error"].startswith("HTTP 422: body.response_format")
