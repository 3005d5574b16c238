"""The HTTP client: request shape, error translation, secrets, and faults over a real socket."""

from __future__ import annotations

import re
import socket
from typing import TYPE_CHECKING

import httpx
import pytest

from conftest import API_KEY, make_wav
from dropscribe.errors import EndpointError, OutageError, PermanentError, RetryableError
from dropscribe.transcribe.http import Client
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings, Format, Task
from fakeapi import FakeAPI, Reply, openai_error

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = FolderSettings(endpoint="e", model="whisper-1")


def endpoint(base_url: str = "http://127.0.0.1:9/v1", timeout: float = 5.0) -> Endpoint:
    return Endpoint(
        name="e",
        base_url=base_url,
        timeout=timeout,
        connect_timeout=2.0,
        max_concurrency=2,
        max_attempts=3,
        backoff_max=1.0,
        api_key=API_KEY,
    )


def mock(handler) -> Client:
    return Client(endpoint(), transport=httpx.MockTransport(handler))


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "a b.wav")


def test_repr_masks_the_key():
    """Neither the endpoint nor the client shows the API key in its repr."""
    client = mock(lambda r: httpx.Response(200, json={"text": ""}))
    assert API_KEY not in repr(client)
    assert API_KEY not in repr(client.endpoint)
    client.close()


@pytest.mark.parametrize(
    ("status", "body", "cls", "message"),
    [
        (
            400,
            {
                "error": {
                    "message": "Invalid file format.",
                    "type": "invalid_request_error",
                    "code": None,
                }
            },
            PermanentError,
            "HTTP 400: Invalid file format.",
        ),
        (403, {"detail": "Invalid API key"}, EndpointError, "HTTP 403: Invalid API key"),
        (404, {"error": "model not found"}, EndpointError, "HTTP 404: model not found"),
        (
            413,
            "<html><title>413 Request Entity Too Large</title></html>",
            PermanentError,
            "HTTP 413: 413 Request Entity Too Large",
        ),
        (
            422,
            {"detail": [{"loc": ["body", "file"], "msg": "required"}]},
            PermanentError,
            "HTTP 422: body.file: required",
        ),
        (500, {"error": {"message": "boom", "code": 500}}, RetryableError, "HTTP 500: boom"),
        (  # faster-whisper-server's detail.error, unwrapped into plain words
            400,
            {"detail": {"error": "Audio file is too short"}},
            PermanentError,
            "HTTP 400: Audio file is too short",
        ),
        (502, "Bad gateway", RetryableError, "HTTP 502: Bad gateway"),
        (
            429,
            {"error": {"message": "You exceeded your current quota", "code": "insufficient_quota"}},
            EndpointError,
            "HTTP 429: You exceeded",
        ),
        (
            429,
            {"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}},
            RetryableError,
            "HTTP 429: Rate limit",
        ),
    ],
)
def test_error_bodies_of_every_shape_become_our_errors(wav, status, body, cls, message):
    """JSON, FastAPI detail, plain-string and HTML errors map to retryable, endpoint or permanent."""

    def handler(request: httpx.Request) -> httpx.Response:
        if isinstance(body, str):
            return httpx.Response(status, text=body, headers={"x-request-id": "req_1"})
        return httpx.Response(status, json=body, headers={"x-request-id": "req_1"})

    client = mock(handler)
    with pytest.raises(cls) as info:
        client.transcribe(wav, SETTINGS)
    client.close()
    assert info.value.message.startswith(message)
    assert info.value.status == status
    assert info.value.request_id == "req_1"


def test_key_echoed_by_server_is_scrubbed(wav):
    """A 401 message that repeats the key never carries it into our error."""
    client = mock(lambda r: httpx.Response(401, json={"error": {"message": f"bad key {API_KEY}"}}))
    with pytest.raises(EndpointError) as info:
        client.transcribe(wav, SETTINGS)
    client.close()
    assert API_KEY not in str(info.value)
    assert "bad key ***" in info.value.message


def test_connection_errors_say_which_url_and_why(wav):
    """A refused connection or a name that does not resolve is an outage (not the file's)
    whose message names the URL and the reason in words, not an exception class."""
    client = Client(endpoint("http://127.0.0.1:1/v1"))
    with pytest.raises(OutageError) as info:
        client.transcribe(wav, SETTINGS)
    client.close()
    assert info.value.message == "cannot connect to http://127.0.0.1:1/v1: connection refused"

    def unresolvable(request: httpx.Request) -> httpx.Response:
        cause = socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        raise httpx.ConnectError(str(cause), request=request) from cause

    client = mock(unresolvable)
    with pytest.raises(OutageError) as info:
        client.transcribe(wav, SETTINGS)
    client.close()
    assert info.value.message == "cannot connect to http://127.0.0.1:9/v1: name does not resolve"


def test_a_redirect_is_not_followed_nor_taken_as_a_transcript(wav):
    """A 3xx answer pauses the endpoint with where it points; the key goes nowhere else."""
    seen = []

    def redirect(request: httpx.Request) -> httpx.Response:
        seen.append(request.url.host)
        return httpx.Response(
            307, headers={"Location": "https://elsewhere.example/v1"}, json={"text": "no"}
        )

    client = mock(redirect)
    with pytest.raises(EndpointError, match=r"^HTTP 307: .* redirects to https://elsewhere"):
        client.transcribe(wav, SETTINGS)
    client.close()
    assert seen == ["127.0.0.1"]


@pytest.mark.parametrize(
    ("answer", "reason"),
    [
        ('{"text": "a", "segments": [{"start": 0, "end": 1e999, "text": "a"}]}', "segments[0].end"),
        ('{"text": "a", "duration": NaN}', "duration"),
        ('{"text": "a", "words": [{"word": "a", "start": -Infinity, "end": 1}]}', "words[0]"),
    ],
)
def test_impossible_times_are_a_clear_failure(wav, answer, reason):
    """NaN, infinite or absurd times in an answer fail the request with where they are."""
    client = mock(lambda r: httpx.Response(200, text=answer))
    with pytest.raises(
        PermanentError, match=rf"^answer has an impossible time: {re.escape(reason)}"
    ):
        client.transcribe(wav, SETTINGS)
    client.close()


def test_a_lone_surrogate_and_nan_fields_become_writable(wav):
    """A lone surrogate in the text becomes U+FFFD; a NaN in a segment's extra field None."""
    body = '{"text": "a\\ud800b", "segments": [{"start": 0, "end": 1, "text": "x", "p": NaN}]}'
    client = mock(lambda r: httpx.Response(200, text=body))
    transcript = client.transcribe(wav, SETTINGS)
    client.close()
    assert transcript.text == "a\ufffdb"
    assert transcript.segments[0]["p"] is None
    transcript.text.encode("utf-8")


def test_server_message_is_scrubbed_before_it_is_shortened(wav):
    """A key that straddles the 300-character cut leaves no prefix of itself behind."""
    message = "x" * 290 + API_KEY
    client = mock(lambda r: httpx.Response(400, json={"error": {"message": message}}))
    with pytest.raises(PermanentError) as info:
        client.transcribe(wav, SETTINGS)
    client.close()
    assert API_KEY[:8] not in info.value.message
    assert info.value.message.endswith("***")


def test_non_json_success_is_permanent(wav):
    """A 200 with an HTML body (a misconfigured proxy) is reported, not crashed on."""
    client = mock(lambda r: httpx.Response(200, text="<html><title>Login</title></html>"))
    with pytest.raises(PermanentError, match="answer is not JSON: Login"):
        client.transcribe(wav, SETTINGS)
    client.close()


def test_form_fields_and_file_over_a_real_socket(wav):
    """The real server receives every field, the filename and the exact bytes, with Bearer auth."""
    settings = FolderSettings(
        endpoint="e",
        model="whisper-1",
        language="sv",
        prompt="Hej",
        temperature=0.4,
        formats=(Format.TXT, Format.SRT),
    )
    with FakeAPI(api_key=API_KEY) as api:
        client = Client(endpoint(api.base_url))
        transcript = client.transcribe(wav, settings)
        client.close()
    up = api.uploads[0]
    assert up.fields == {
        "model": "whisper-1",
        "response_format": "verbose_json",
        "timestamp_granularities[]": "segment",
        "language": "sv",
        "prompt": "Hej",
        "temperature": "0.4",
    }
    assert up.filename == "a b.wav"
    assert up.size == wav.stat().st_size
    assert up.headers["authorization"] == f"Bearer {API_KEY}"
    assert transcript.request_id
    assert [s["text"] for s in transcript.segments] == ["transcript of", "a b.wav"]


def test_translation_goes_to_its_route_without_language(wav):
    """task: translate posts to /audio/translations and drops language."""
    settings = FolderSettings(endpoint="e", model="whisper-1", language="de", task=Task.TRANSLATE)
    with FakeAPI() as api:
        client = Client(endpoint(api.base_url))
        client.transcribe(wav, settings)
        client.close()
    assert api.uploads[0].path == "/v1/audio/translations"
    assert "language" not in api.uploads[0].fields


def test_keep_alive_reuses_one_connection(wav):
    """Sequential uploads share one kept-alive connection."""
    with FakeAPI() as api:
        client = Client(endpoint(api.base_url))
        for _ in range(5):
            client.transcribe(wav, SETTINGS)
        client.close()
    assert api.connections == 1


def test_faults_over_a_real_socket(wav):
    """429 with Retry-After, 503, a dropped connection and a stall map to retryable errors."""
    with FakeAPI() as api:
        api.script.extend(
            [
                openai_error(
                    429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": "7"}
                ),
                openai_error(503, "Slow Down", type_="server_error", **{"retry-after-ms": "250"}),
                Reply(drop=True),
                Reply(stall=3.0),
            ]
        )
        client = Client(endpoint(api.base_url, timeout=0.5))
        errors = []
        for _ in range(4):
            with pytest.raises(RetryableError) as info:
                client.transcribe(wav, SETTINGS)
            errors.append(info.value)
        client.close()
    assert [e.status for e in errors] == [429, 503, None, None]
    assert errors[0].retry_after == 7.0
    assert errors[1].retry_after == 0.25
    assert errors[2].message == f"{api.base_url} closed the connection before answering in full"
    assert errors[3].message == f"no answer from {api.base_url} within 0.5 s (timeout)"
    assert [e.outage for e in errors] == [True, True, False, False]


def test_a_trickling_answer_meets_one_deadline_for_the_whole_request(wav):
    """A server sending its answer a byte every half second, each read well inside the
    per-read timeout, is cut off when the whole request's timeout has passed."""
    with FakeAPI() as api:
        api.script.append(Reply(body={"text": "x" * 100}, trickle=0.4))
        client = Client(endpoint(api.base_url, timeout=1.5))
        with pytest.raises(RetryableError) as info:
            client.transcribe(wav, SETTINGS)
        client.close()
    assert info.value.message == f"no complete answer from {api.base_url} within 1.5 s (timeout)"


def test_an_answer_over_the_size_cap_is_refused_after_decompression(wav):
    """A small gzip body that inflates past max_answer_bytes fails, counted decompressed;
    so does one whose Content-Length says so, before it is read."""
    import gzip
    import json as jsonmod

    bomb = gzip.compress(jsonmod.dumps({"text": "a" * 5_000_000}).encode())
    assert len(bomb) < 20_000
    with FakeAPI() as api:
        api.script.append(Reply(raw=bomb, headers={"Content-Encoding": "gzip"}))
        api.script.append(Reply(body={"text": "b" * 3_000_000}))
        client = Client(endpoint(api.base_url).model_copy(update={"max_answer_bytes": 2**20}))
        messages = []
        for _ in range(2):
            with pytest.raises(PermanentError) as info:
                client.transcribe(wav, SETTINGS)
            messages.append(info.value.message)
        client.close()
    assert messages[0].startswith(f"answer from {api.base_url} is over 1,048,576 bytes (at least")
    assert messages[1] == (
        f"answer from {api.base_url} is over 1,048,576 bytes (3,000,012; max_answer_bytes)"
    )


def _subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _subclasses(sub)


@pytest.mark.parametrize(
    "error",
    sorted(set(_subclasses(httpx.HTTPError)), key=lambda c: c.__name__),
    ids=lambda c: c.__name__,
)
def test_every_httpx_error_becomes_one_of_ours(wav, error):
    """Whatever httpx raises while sending or reading (every HTTPError subclass) leaves the
    client as a TranscriptionError, never as an httpx exception."""

    def handler(request):
        if issubclass(error, httpx.HTTPStatusError):
            raise error("boom", request=request, response=httpx.Response(500))
        if issubclass(error, httpx.RequestError):
            raise error("boom", request=request)
        raise error("boom")

    with pytest.raises((RetryableError, PermanentError)):
        mock(handler).transcribe(wav, SETTINGS)


def test_an_answer_nested_past_reason_is_a_clear_failure(wav):
    """A JSON answer nested 100,000 deep is 'answer is not JSON', not a RecursionError."""
    body = "[" * 100_000 + "]" * 100_000
    client = mock(lambda request: httpx.Response(200, text=body))
    with pytest.raises(PermanentError, match="answer is not JSON"):
        client.transcribe(wav, SETTINGS)
