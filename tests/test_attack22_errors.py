"""attack22: an error answer's body is read to 1 MiB and no further. Its message is 300
characters at most; but a 503 whose body was longer than max_answer_bytes was refused as
the file's fault (PermanentError: "over max_answer_bytes"), and one under it was read,
parsed and split whole: 64 MiB of ``{"error": {"message": [0, 0, ...]}}``, 60 kB gzipped,
took 29 s of a worker and 2.6 GB to say, at every retry. Over a real socket to a fake
server that counts what its socket took of each answer."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import API_KEY, make_wav, wait_for
from dropscribe.errors import OutageError, PermanentError
from dropscribe.transcribe import models, radar
from dropscribe.vocab.settings import FolderSettings
from fakeapi import Reply
from test_answers21_bytes import Counted
from test_answers21_units import client

SETTINGS = FolderSettings(endpoint="e", model="whisper-1")
MiB = 1 << 20


def test_a_503_longer_than_max_answer_bytes_is_still_an_outage(tmp_path):
    """A 503 of 16 MB (a proxy's page) against an 8 MiB cap: the endpoint's outage, said
    from the page's start; the connection closed with most of the page unsent."""
    wav = make_wav(tmp_path / "a.wav", seconds=1.0)
    page = "<html><title>Service Unavailable</title>" + "<p>" * 5_500_000
    with Counted(api_key=API_KEY) as api:
        api.script.append(Reply(503, page, content_type="text/html"))
        http = client(api, cap=8 * MiB, timeout=60.0)
        with pytest.raises(OutageError) as info:
            http.transcribe(wav, SETTINGS, models.Ask("json", seconds=1.0))
        http.close()
        wait_for(api.refused.is_set, what="the server's write refused")
        assert api.taken < len(page) / 2, f"{api.taken:,} bytes taken by the socket"
    assert info.value.message == "HTTP 503: Service Unavailable"
    assert info.value.status == 503


@pytest.mark.parametrize("status", [400, 503])
def test_a_huge_compressed_error_is_said_from_its_start(tmp_path, status):
    """64 MiB of a JSON error's message list, gzipped to 60 kB: said from its first MiB,
    as the status makes it (the file's fault, or an outage), never parsed whole (its text,
    not the list's: 29 s and 2.6 GB before)."""
    wav = make_wav(tmp_path / "a.wav", seconds=1.0)
    body = b'{"error": {"message": [' + b"0, " * 22_000_000 + b"0]}}"
    with Counted(api_key=API_KEY) as api:
        api.script.append(
            Reply(status, raw=gzip.compress(body), headers={"Content-Encoding": "gzip"})
        )
        http = client(api, timeout=60.0)
        with pytest.raises(PermanentError if status == 400 else OutageError) as info:
            http.transcribe(wav, SETTINGS, models.Ask("json", seconds=1.0))
        http.close()
    assert info.value.message.startswith(f'HTTP {status}: {{"error": {{"message": [0, 0, 0')
    assert len(info.value.message) <= len(f"HTTP {status}: ") + 300


def test_a_model_list_is_read_to_4_mib_and_no_further():
    """GET /models answered with 16 MB of models: refused past radar's 4 MiB (it was read
    to max_answer_bytes, 64 MiB, and parsed whole in the daemon's radar thread), the
    connection closed with most of it unsent."""
    with Counted(api_key=API_KEY) as api:
        api.catalogue = [{"id": f"model-{n:07d}", "object": "model"} for n in range(400_000)]
        size = len(json.dumps({"object": "list", "data": api.catalogue}))
        assert size > 15 * MiB
        http = client(api, timeout=60.0)
        with pytest.raises(PermanentError) as info:
            http.catalogue()
        http.close()
        wait_for(api.refused.is_set, what="the server's write refused")
        assert api.taken < size / 2, f"{api.taken:,} bytes taken by the socket"
    assert info.value.message.startswith(
        f"answer from {api.base_url}/models is over {radar.LISTING_BYTES:,} bytes ({size:,}),"
    )
