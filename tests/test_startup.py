"""Each command imports only what it needs: the real ``dropscribe`` process, run with
``python -X importtime``, names every module it imported on stderr; the tests assert on
which heavy libraries are among them (never on time, which a shared machine makes noise of).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from conftest import API_KEY, make_wav

# The libraries a command pays for on import (measured: 0.1-0.3 s of CPU each).
ENGINE = {"faster_whisper", "ctranslate2"}  # the local engine
AUDIO = {"av", "numpy"}  # decoding and splitting audio
HTTP = {"httpx", "httpcore"}  # uploading
SHARED_LEDGER = {"psycopg", "psycopg_pool"}  # ledger: url:
VALIDATION = {"pydantic", "pydantic_core"}  # reading a config
LOGGING = {"structlog", "asyncio"}  # events (structlog.stdlib imports asyncio)


def imported(*argv: str, env: dict[str, str] | None = None) -> set[str]:
    """The top-level packages ``dropscribe ARGV`` imported, from its ``-X importtime``."""
    run = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "dropscribe", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return {
        line.rsplit("|", 1)[1].strip().split(".")[0]
        for line in run.stderr.splitlines()
        if line.startswith("import time:") and "|" in line
    }


def write_config(tmp_path, endpoint: dict[str, object]):
    (tmp_path / "inbox").mkdir(exist_ok=True)
    path = tmp_path / "config.yaml"
    path.write_text(
        json.dumps(
            {
                "endpoints": {"here": endpoint},
                "defaults": {"endpoint": "here", "model": "whisper-1", "settle_seconds": 0},
                "inboxes": [{"path": str(tmp_path / "inbox")}],
                "state_dir": str(tmp_path / "state"),
                "log": {"format": "json", "level": "warning"},
            }
        )
    )
    return path


def test_help_imports_no_library_of_any_command():
    """--help reads no config and sends nothing: no validation, logging, audio, HTTP or engine."""
    heavy = ENGINE | AUDIO | HTTP | SHARED_LEDGER | VALIDATION | LOGGING | {"yaml"}
    assert imported("--help") & heavy == set()


def test_status_imports_no_engine_audio_or_http(tmp_path, api):
    """status on an API config reads the ledger: no engine, no audio library, no shared ledger."""
    config = write_config(tmp_path, {"base_url": api.base_url})
    assert imported("status", "-c", str(config)) & (ENGINE | AUDIO | SHARED_LEDGER) == set()


def test_status_of_a_local_config_imports_no_http(tmp_path):
    """status with no URL in its config imports no HTTP client and no engine."""
    config = write_config(tmp_path, {"kind": "local"})
    assert imported("status", "-c", str(config)) & (ENGINE | HTTP) == set()


@pytest.mark.slow
def test_once_through_an_api_loads_no_local_engine(tmp_path, api):
    """once through an HTTP endpoint transcribes without loading faster-whisper or CTranslate2."""
    endpoint = {"base_url": api.base_url, "api_key_env": "DROPSCRIBE_TEST_KEY"}
    config = write_config(tmp_path, endpoint)
    make_wav(tmp_path / "inbox" / "hello.wav", seconds=1.0)
    found = imported("once", "-c", str(config), env={"DROPSCRIBE_TEST_KEY": API_KEY})
    assert found & ENGINE == set()
    assert (tmp_path / "inbox" / "hello.txt").exists()


@pytest.mark.slow
def test_once_with_the_local_engine_imports_no_http_client(tmp_path):
    """once on a config with no URL (kind: local, the bundled tiny.en) never imports httpx."""
    config = write_config(tmp_path, {"kind": "local"})
    data = json.loads(config.read_text())
    data["defaults"]["model"] = "tiny.en"
    config.write_text(json.dumps(data))
    make_wav(tmp_path / "inbox" / "hello.wav", seconds=1.0)
    assert imported("once", "-c", str(config)) & HTTP == set()
    assert (tmp_path / "inbox" / "hello.txt").exists()
