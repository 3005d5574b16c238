"""Several endpoints per folder (issue 34): the places that read only a list's first
endpoint now read the whole list, through the real daemon and commands: once's
"unreachable", max_attempts after a crash, status's waiting files, explain's sidecar names
and speakers line, a transcript reused for a copy; and a degraded result (speakers asked
of an endpoint that labels none) is logged and shown by explain."""

from __future__ import annotations

import json
import os
import shutil
from typing import TYPE_CHECKING, Any

import pytest

from conftest import API_KEY, DaemonProcess, make_wav, wait_for
from fakeapi import FakeAPI
from test_fallback34 import MODELS, Quota, free_port, three
from test_fallback34c import Stalled

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 10, "backoff_max": 0.2}
TEMPLATE = "{stem}.{model}.{ext}"


@pytest.fixture
def spares() -> Iterator[tuple[FakeAPI, FakeAPI]]:
    """The second and third endpoints, both well."""
    with FakeAPI(api_key=API_KEY) as second, FakeAPI(api_key=API_KEY, kind="speaches") as third:
        yield second, third


def crashing(setup: Any) -> dict[str, str]:
    """Environment in which every 200 answer crashes the daemon's reading of it (a bug)."""
    folder = setup.root / "inject"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "from dropscribe.transcribe import http\n"
        "answer = http.Client._answer\n"
        "def crash(self, response, *args):\n"
        "    if response.status_code == 200:\n"
        "        raise RuntimeError('injected fault')\n"
        "    return answer(self, response, *args)\n"
        "http.Client._answer = crash\n"
    )
    return {
        "PYTHONPATH": os.pathsep.join(filter(None, [str(folder), os.environ.get("PYTHONPATH")]))
    }


def test_once_names_every_endpoint_of_the_list_unreachable(setup: Any) -> None:
    """dropscribe once, all three endpoints down: file.waiting names the three, not the
    first alone."""
    setup.data["endpoints"] = {
        name: {"base_url": f"http://127.0.0.1:{free_port()}/v1", **COMMON} for name in MODELS
    }
    setup.data["defaults"].update(endpoint=list(MODELS), model="whisper-1")
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    once = DaemonProcess(setup, command="once")
    assert once.wait() == 3
    [waiting] = once.named("file.waiting")
    assert waiting["endpoints"] == list(MODELS)
    assert waiting["reason"].startswith("waiting: endpoints first, second, third unreachable: ")


def test_a_crash_counts_against_the_endpoint_the_file_was_sent_to(setup: Any, spares: Any) -> None:
    """A crash of ours while the second endpoint has the file: the file gets the second's
    max_attempts (3), not the first's (1), so it is not quarantined at the first crash."""
    second, third = spares
    with Quota(api_key=API_KEY, kind="groq") as first:
        three(setup, first.base_url, second, third, max_attempts=1)
        make_wav(setup.inbox / "a.wav", seconds=1.0)
        once = DaemonProcess(setup, command="once", env=crashing(setup))
        once.wait()
    assert once.named("job.crashed")
    [failed] = once.named("file.failed")
    assert failed["will_retry"] is True
    assert (setup.inbox / "a.wav").exists()
    assert not (setup.inbox / "failed").exists()


def test_status_does_not_call_a_file_waiting_while_another_endpoint_has_it(
    setup: Any, spares: Any
) -> None:
    """The first endpoint paused (a bad key) while the second is transcribing the file:
    status says the file is in flight, not waiting for the first endpoint."""
    _, third = spares
    with FakeAPI(api_key="another key", kind="groq") as first, Stalled(api_key=API_KEY) as second:
        three(setup, first.base_url, second, third)
        make_wav(setup.inbox / "a.wav", seconds=1.0)
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("file.fallback", timeout=30)
            wait_for(lambda: second.uploads, what="the second endpoint holds the file")

            def paused() -> dict[str, Any] | None:
                found = json.loads(setup.command("status", "--json").stdout)
                states = {e["name"]: e["state"] for e in found["endpoints"]}
                return found if states["first"] == "paused" and found["files"] else None

            found = wait_for(paused, timeout=30, what="status shows the first paused")
        finally:
            daemon.kill()
    [entry] = found["files"]
    assert entry["state"] == "in_flight", entry


def test_explain_names_the_sidecars_each_endpoint_would_write(setup: Any, spares: Any) -> None:
    """name_template with {model}, a file not transcribed yet: explain gives the sidecar
    names of each endpoint of the list, each with its own model."""
    second, third = spares
    three(setup, second.base_url, second, third)
    setup.data["defaults"]["name_template"] = TEMPLATE
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    explained = setup.command("explain", str(setup.inbox / "a.wav")).stdout
    for name, model in MODELS.items():
        assert f"on {name}: a.{model}.txt" in explained


def test_explain_tells_speakers_on_a_later_endpoint_that_takes_voices(setup: Any) -> None:
    """speakers: true, the first endpoint (mistral) takes no known voices but the second
    (OpenAI's diarizing model) does: explain says how speakers are kept on the second."""
    setup.data["endpoints"] = {
        "first": {"kind": "mistral", "base_url": "http://127.0.0.1:9/v1", **COMMON},
        "second": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1", **COMMON},
    }
    models = {"first": "voxtral-mini-latest", "second": "gpt-4o-transcribe-diarize"}
    setup.data["defaults"].update(endpoint=["first", "second"], model=models, speakers=True)
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    result = setup.command("explain", str(setup.inbox / "a.wav"))
    assert "  speakers (on second): if the recording is cut into chunks" in result.stdout, result


def test_a_copy_reusing_the_transcript_is_named_with_the_model_that_made_it(
    setup: Any, spares: Any
) -> None:
    """Two copies of one recording, the first endpoint out of quota: the second endpoint
    transcribes it once, and the copy that reuses the transcript from the ledger names its
    sidecar with the second endpoint's model too."""
    second, third = spares
    with Quota(api_key=API_KEY, kind="groq") as first:
        three(setup, first.base_url, second, third)
        setup.data["defaults"]["name_template"] = TEMPLATE
        make_wav(setup.root / "a.wav", seconds=1.0)
        for name in ("a.wav", "b.wav"):
            shutil.copy(setup.root / "a.wav", setup.inbox / name)
        once = DaemonProcess(setup, command="once")
        assert once.wait() == 0
    assert once.named("transcript.reused")
    assert len(second.uploads) == 1
    for stem in ("a", "b"):
        assert (setup.inbox / f"{stem}.{MODELS['second']}.txt").exists(), sorted(
            p.name for p in setup.inbox.iterdir()
        )


def test_speakers_from_an_endpoint_that_labels_none_is_a_degraded_result(setup: Any) -> None:
    """speakers: true, the first endpoint (which labels speakers) out of quota: the second,
    which labels none, takes the file; file.degraded says what and why, and explain shows
    it on the endpoint that took it."""
    with Quota(api_key=API_KEY) as first, FakeAPI(api_key=API_KEY, kind="groq") as second:
        setup.data["endpoints"] = {
            "first": {"kind": "openai", "base_url": first.base_url, **COMMON},
            "second": {"kind": "groq", "base_url": second.base_url, **COMMON},
        }
        models = {"first": "gpt-4o-transcribe-diarize", "second": "whisper-large-v3-turbo"}
        setup.data["defaults"].update(endpoint=["first", "second"], model=models, speakers=True)
        audio: Path = setup.inbox / "a.wav"
        make_wav(audio, seconds=1.0)
        once = DaemonProcess(setup, command="once")
        assert once.wait() == 0, once.named("config.invalid")
    [degraded] = once.named("file.degraded")
    assert (degraded["endpoint"], degraded["what"]) == ("second", ["speakers"])
    assert "labels no speakers" in degraded["why"]
    explained = setup.command("explain", str(audio)).stdout
    assert "endpoint second (whisper-large-v3-turbo): took it (degraded: speakers: " in explained
