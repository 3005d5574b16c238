"""house3: `dropscribe explain` tells the timing plan the planner itself makes, and
`check-config` decodes nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import TYPE_CHECKING

import pytest

from dropscribe.errors import PermanentError
from dropscribe.transcribe import answers, kinds, models
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings
from test_startup import AUDIO, imported, write_config

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup


def _explained(setup: Setup, path: Path) -> str:
    """What `dropscribe explain` prints of ``path``."""
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", "explain", "-c", str(setup.write()), str(path)],
        capture_output=True,
        text=True,
        env={**os.environ, **setup.env},
        check=False,
    ).stdout


def _timing(said: str) -> str:
    return next(line for line in said.splitlines() if line.strip().startswith("timing:"))


def test_explain_says_voxtral_3_is_asked_for_no_times_with_a_language(setup):
    """Voxtral 3 with a language (and no speakers) is asked for no times, its words timed
    here; with speakers it is asked for segment times and the language is left out."""
    setup.data["endpoints"]["local"]["kind"] = "mistral"
    setup.data["defaults"].update(model="voxtral-mini-transcribe-3", formats=["srt"], language="en")
    setup.data["inboxes"].append({"path": str(setup.root / "meetings"), "speakers": True})
    (setup.root / "meetings").mkdir()
    alone = _timing(_explained(setup, setup.inbox / "memo.wav"))
    together = _timing(_explained(setup, setup.root / "meetings" / "memo.wav"))
    assert "timed on this machine with tiny.en; the model is asked for none" in alone
    assert "timed on this machine with tiny.en (the model gives segment times only)" in together


def test_explain_honours_a_model_stated_to_give_no_times(setup):
    """A model the config says gives no timestamps is not described as giving word times."""
    setup.data["endpoints"]["local"]["models"] = {"whisper-1": {"timestamps": False}}
    setup.data["defaults"].update(formats=["srt"])
    timing = _timing(_explained(setup, setup.inbox / "memo.wav"))
    assert "the answer's own words timed on this machine with tiny.en" in timing
    assert "(the model gives no times)" in timing


def test_check_config_of_a_local_config_decodes_nothing(tmp_path):
    """check-config of an English-only local model imports neither numpy nor PyAV."""
    config = write_config(tmp_path, {"kind": "local"})
    config.write_text(config.read_text().replace('"whisper-1"', '"tiny.en"'))
    assert imported("check-config", "-c", str(config)) & AUDIO == set()


@pytest.mark.parametrize(
    ("kind", "version", "path"),
    [
        ("groq", "2024-10-21", "audio/transcriptions"),
        ("azure", "2024-10-21", "openai/deployments/whisper-1/audio/transcriptions"),
        ("azure", "v1", "openai/v1/audio/transcriptions"),
    ],
)
def test_groq_and_azure_honour_request_path(kind, version, path):
    """groq and azure send to request_path where one is set, as every other kind does."""
    settings = FolderSettings(model="whisper-1")
    ask = models.ask(models.table(kind, "whisper-1"), timed=False, prompt=False, seconds=1.0)
    plain = Endpoint(name="e", kind=kind, base_url="http://127.0.0.1:1", api_version=version)
    routed = plain.model_copy(update={"request_path": "gw/stt"})
    assert kinds.shape(plain, settings, ask).path == path
    assert kinds.shape(routed, settings, ask).path == "gw/stt"


def test_an_answer_that_is_not_an_object_keeps_its_status():
    """A JSON answer that is not an object is refused with its HTTP status and request id."""
    with pytest.raises(PermanentError) as raised:
        answers.transcript(
            200,
            {"x-request-id": "req_1"},
            b"[1, 2]",
            charset=None,
            response_format="json",
            model="whisper-1",
            where="http://127.0.0.1",
            scrub=str,
            now=0.0,
        )
    assert (raised.value.status, raised.value.request_id) == (200, "req_1")


def test_status_is_not_fooled_by_a_stale_lock_naming_a_live_process(setup):
    """A lock file left by a daemon now gone, naming a live process that is no daemon
    (its command line says dropscribe too), reads as no daemon running."""
    other = subprocess.Popen(  # lives until its stdin closes
        [sys.executable, "-c", "import sys; sys.stdin.read()", "dropscribe"],
        stdin=subprocess.PIPE,
    )
    try:
        setup.state.mkdir(mode=0o700)
        (setup.state / "lock").write_text(f"{other.pid}\n")
        said = subprocess.run(
            [sys.executable, "-m", "dropscribe", "status", "--json", "-c", str(setup.write())],
            capture_output=True,
            text=True,
            env={**os.environ, **setup.env},
            check=False,
        )
    finally:
        assert other.stdin is not None
        other.stdin.close()
        other.wait(30)
    assert json.loads(said.stdout)["daemon"] == {"running": False, "pid": None}, said.stderr
