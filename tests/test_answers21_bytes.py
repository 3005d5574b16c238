"""answers21: an answer is held to its audio while it is read, not after. A 200 of many
MiB for a one-second recording was read whole (up to max_answer_bytes, 64 MiB), parsed
whole, and only then refused for what it held; now reading stops once the answer is
longer than any for that much audio could be (32 KiB a second, 1 MiB at least), the
connection is closed unread, and the file is quarantined naming the endpoint, the size
and the audio's seconds. Over a real socket to the fake server, which counts what its
socket took of each answer."""

from __future__ import annotations

import gzip
import json
import math
import re
import threading
from typing import TYPE_CHECKING, Any

import pytest

from conftest import API_KEY, DaemonProcess, Setup, make_wav, wait_for
from fakeapi import FakeAPI, Reply

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

pytestmark = pytest.mark.slow

PIECE = 64 * 1024
LEAST, PER_SECOND = 1 << 20, 32 * 1024  # what any answer may be: 1 MiB, 32 KiB a second
HOSTILE = json.dumps({"text": "w " * 8_000_000, "duration": 1.0}).encode()  # 16 MB


def cap(seconds: float) -> int:
    """The most bytes an answer for ``seconds`` of audio is read to."""
    return max(LEAST, math.ceil(PER_SECOND * seconds))


class _Counting:
    """A handler's ``wfile``: written in pieces, each counted once the socket took it; a
    piece the client refused (it closed the connection) ends the answer quietly."""

    def __init__(self, inner: Any, api: Counted) -> None:
        self._inner = inner
        self._api = api

    def write(self, data: bytes) -> int:
        view = memoryview(data)
        for start in range(0, len(view), PIECE):
            if self._api.refused.is_set():
                break
            piece = view[start : start + PIECE]
            try:
                self._inner.write(piece)
            except (BrokenPipeError, ConnectionResetError):
                self._api.refused.set()
                break
            with self._api.counting:
                self._api.taken += len(piece)
        return len(data)

    def flush(self) -> None:
        if not self._api.refused.is_set():
            self._inner.flush()


class Counted(FakeAPI):
    """The fake server, counting the bytes its sockets took; with ``chunked``, its
    answers go without a length (Transfer-Encoding: chunked, as a streaming server's)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.taken = 0
        self.counting = threading.Lock()
        self.refused = threading.Event()  # a write failed: the client closed early
        self.chunked = False

    def _handler_class(self) -> Any:
        base: Any = super()._handler_class()
        api = self

        class Handler(base):  # type: ignore[misc,valid-type]
            def setup(self) -> None:
                super().setup()
                self.wfile = _Counting(self.wfile, api)

            def _send(self, reply: Reply) -> None:
                if not api.chunked or reply.status != 200:
                    super()._send(reply)
                    return
                data = reply.raw if reply.raw is not None else json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                for start in range(0, len(data), PIECE):
                    piece = data[start : start + PIECE]
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                self.wfile.write(b"0\r\n\r\n")

        return Handler


@pytest.fixture
def counted(tmp_path: Path) -> Iterator[Setup]:
    """A Setup whose endpoint is a counting fake server; one attempt per file."""
    with Counted(api_key=API_KEY) as api:
        setup = Setup(tmp_path, api)
        setup.data["endpoints"]["local"]["max_attempts"] = 1
        setup.data["defaults"]["formats"] = ["txt", "srt"]
        yield setup


def once(setup: Setup, timeout: float = 60) -> DaemonProcess:
    """``dropscribe once`` on the inbox, to its end, without a traceback."""
    daemon = DaemonProcess(setup, command="once")
    try:
        daemon.wait(timeout=timeout)
    finally:
        daemon.kill()
    assert not any("Traceback" in line for line in daemon.raw), daemon
    return daemon


def quarantined(setup: Setup, daemon: DaemonProcess, name: str = "a.wav") -> str:
    """The reason ``name`` was failed for, the same in its quarantined report."""
    (failed,) = daemon.named("file.failed")
    assert not daemon.named("file.done")
    report = json.loads((setup.inbox / "failed" / f"{name}.error.json").read_text())
    assert report["reason"] == failed["error"]
    return str(failed["error"])


@pytest.mark.parametrize("how", ["sized", "chunked", "gzip"])
def test_a_one_second_file_answered_with_megabytes_is_refused_before_it_is_read(counted, how):
    """A 1-s recording answered with 16 MB of valid JSON (its length declared, streamed
    without one, or inflated from 30 kB of gzip): refused after at most 1 MiB, naming the
    endpoint, the size and the seconds; the server's socket took less than half of it."""
    setup = counted
    api: Counted = setup.api  # type: ignore[assignment]
    if how == "gzip":
        reply = Reply(200, raw=gzip.compress(HOSTILE), headers={"Content-Encoding": "gzip"})
    else:
        api.chunked = how == "chunked"
        reply = Reply(200, raw=HOSTILE)
    api.script.append(reply)
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    error = quarantined(setup, once(setup))
    size = f"{len(HOSTILE):,}" if how == "sized" else "at least "
    assert error.startswith(f"answer from endpoint 'local' ({api.base_url}) is {size}"), error
    assert "bytes for 1 s of audio, over the 1,048,576 any answer for it could be" in error
    if how != "sized":  # counted as read, decompressed: stopped within a piece of the cap
        read = int(re.search(r"is at least ([\d,]+) bytes", error)[1].replace(",", ""))
        piece = 2 * PIECE if how == "chunked" else 1032 * 256  # zlib's most from a slice
        assert LEAST < read < LEAST + piece, error
    if how != "gzip":  # the connection was closed with the rest of the answer unsent
        wait_for(api.refused.is_set, what="the server's write refused")
        assert api.taken < len(HOSTILE) / 2, f"{api.taken:,} bytes taken by the socket"


def honest(seconds: int, per_second: int) -> dict[str, Any]:
    """The largest shape of an honest answer: verbose_json with a segment per word
    (whisper.cpp's -ml 1), each with OpenAI's fields and tokens, and word times."""
    words = [f" word{n % 97}" for n in range(seconds * per_second)]
    step = 1 / per_second
    segments = [
        {
            "id": n,
            "seek": int(n * step) // 30 * 3000,
            "start": round(n * step, 3),
            "end": round((n + 1) * step, 3),
            "text": word,
            "tokens": [50364 + n % 1500, 1000 + n % 40000, 50257],
            "temperature": 0.0,
            "avg_logprob": -0.2345678,
            "compression_ratio": 1.2345678,
            "no_speech_prob": 0.0123456,
        }
        for n, word in enumerate(words)
    ]
    timed = [
        {"word": w.strip(), "start": s["start"], "end": s["end"], "probability": 0.9876543}
        for w, s in zip(words, segments, strict=True)
    ]
    text = "".join(words).strip()
    return {
        "task": "transcribe",
        "language": "english",
        "duration": float(seconds),
        "text": text,
        "segments": segments,
        "words": timed,
    }


def test_an_honest_long_answer_for_a_long_recording_is_taken(counted):
    """A 10-min recording answered with 1.4 MB of dense verbose_json (7 words a second,
    a segment each, word times): over the 1 MiB floor, within what 600 s allows, done."""
    setup = counted
    answer = honest(600, 7)
    body = json.dumps(answer).encode()
    assert LEAST < len(body) < cap(600) / 10
    setup.api.script.append(Reply(200, raw=body))
    make_wav(setup.inbox / "a.wav", seconds=600, rate=1000, freq=100)  # 1.2 MB
    daemon = once(setup, timeout=120)
    assert daemon.named("file.done"), daemon
    assert (setup.inbox / "a.txt").read_text().startswith("word0 word1 word2")


def test_each_chunk_is_held_to_its_own_seconds(counted):
    """A 100-s recording sent in chunks of about 30 s, each answered with 2.5 MB of
    JSON that its item caps take (1,000 segments of long token lists): refused naming a
    chunk's seconds, though the whole recording's 100 s would have allowed 3.3 MB."""
    setup = counted
    setup.data["defaults"]["chunk_seconds"] = 30
    setup.data["endpoints"]["local"]["max_upload_bytes"] = 1_000_000  # the WAV is 3.2 MB
    tokens = list(range(50_000, 50_360))
    segments = [
        {"start": n * 0.02, "end": n * 0.02 + 0.02, "text": "w", "tokens": tokens}
        for n in range(1_000)
    ]
    body = json.dumps({"text": "w", "duration": 20.0, "segments": segments}).encode()
    assert cap(60) < len(body) < cap(100)
    for _ in range(8):
        setup.api.script.append(Reply(200, raw=body))
    make_wav(setup.inbox / "long.wav", seconds=100)
    error = quarantined(setup, once(setup, timeout=120), "long.wav")
    assert re.match(r"chunk \d+ of \d+ \(", error), error
    seconds = float(re.search(r"bytes for ([\d.]+) s of audio", error)[1])
    assert seconds < 60, error
    assert f"over the {cap(seconds):,} any answer" in error
