"""answers21's cap on an answer's bytes, at the transport: what it allows for a length of
audio, and that only a 2xx answer to audio of known length is held to it (an error body
and a request of unknown length keep max_answer_bytes alone). Over a real socket."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING

import pytest

from conftest import API_KEY, make_wav
from dropscribe import transcript
from dropscribe.errors import OutageError, PermanentError
from dropscribe.transcribe import models
from dropscribe.transcribe.http import Client
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings
from fakeapi import FakeAPI, Reply

if TYPE_CHECKING:
    from pathlib import Path

SETTINGS = FolderSettings(endpoint="e", model="whisper-1")
# 2 MB of JSON (include[]=logprobs's shape): over 1 s's 1 MiB, under 600 s's 19 MiB
BIG = {
    "text": "w",
    "duration": 600.0,
    "logprobs": [{"token": " w", "logprob": -0.01, "bytes": [32, 119]}] * 40_000,
}
SIZE = len(json.dumps(BIG).encode())


def client(api: FakeAPI, *, cap: int = 64 << 20, timeout: float = 10.0) -> Client:
    """A client of ``api``'s, its answers capped at ``cap`` bytes."""
    return Client(
        Endpoint(
            name="e",
            base_url=api.base_url,
            timeout=timeout,
            connect_timeout=2.0,
            max_concurrency=2,
            max_attempts=1,
            backoff_max=1.0,
            api_key=API_KEY,
            max_answer_bytes=cap,
        )
    )


@pytest.fixture
def wav(tmp_path: Path) -> Path:
    return make_wav(tmp_path / "a.wav", seconds=1.0)


def test_what_an_answer_may_hold_grows_with_its_audio_from_a_floor():
    """1 MiB for any audio up to 32 s, then 32 KiB a second; nothing for an unknown length."""
    assert transcript.answer_bytes(None) is None
    assert transcript.answer_bytes(math.nan) is None
    assert transcript.answer_bytes(0.0) == transcript.answer_bytes(1.0) == 1 << 20
    assert transcript.answer_bytes(600.0) == 600 * 32 * 1024
    assert models.ask(models.Caps(("json",)), timed=False, prompt=False, seconds=7.5).seconds == 7.5


def test_an_ask_with_its_seconds_equals_one_without():
    """The seconds ride along: learned refusals compare asks by their choices alone."""
    assert models.Ask("json", seconds=1.0) == models.Ask("json")


def test_a_2xx_answer_of_megabytes_for_a_second_is_refused_but_taken_for_minutes(wav):
    """2 MB of JSON: refused for 1 s of audio (naming the endpoint, the size, the seconds),
    taken for 600 s, and taken when the length is not known (max_answer_bytes alone)."""
    with FakeAPI(api_key=API_KEY) as api:
        api.script.extend(Reply(200, BIG) for _ in range(3))
        http = client(api)
        with pytest.raises(PermanentError) as info:
            http.transcribe(wav, SETTINGS, models.Ask("json", seconds=1.0))
        long = http.transcribe(wav, SETTINGS, models.Ask("json", seconds=600.0))
        unknown = http.transcribe(wav, SETTINGS, models.Ask("json"))
        http.close()
    assert info.value.message.startswith(
        f"answer from endpoint 'e' ({api.base_url}) is {SIZE:,} bytes for 1 s of audio,"
        " over the 1,048,576 any answer for it could be"
    )
    assert info.value.status == 200
    assert 2_000_000 < SIZE < 3_000_000
    assert long.text == unknown.text == "w"


def test_an_error_answer_is_not_held_to_the_audio(wav):
    """A 503 whose body is 2 MB (a proxy's page) for 1 s of audio stays an outage."""
    with FakeAPI(api_key=API_KEY) as api:
        api.script.append(Reply(503, "<p>" * 700_000, content_type="text/html"))
        http = client(api)
        with pytest.raises(OutageError) as info:
            http.transcribe(wav, SETTINGS, models.Ask("json", seconds=1.0))
        http.close()
    assert info.value.status == 503
