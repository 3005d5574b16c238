"""Completion hooks: a command and a webhook hear of every finished file; failing hooks lose nothing."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

import pytest

from conftest import make_wav, named, wait_for
from fakeapi import openai_error


class Receiver:
    """A webhook endpoint on 127.0.0.1 that records JSON bodies and answers ``status``."""

    def __init__(self, status: int = 204) -> None:
        self.bodies: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                receiver.bodies.append(json.loads(self.rfile.read(length)))
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Self:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


RECORD = "import json, os, sys; open(sys.argv[1], 'a').write(json.dumps({'stdin': json.load(sys.stdin), 'env': os.environ['DROPSCRIBE_OUTCOME']}) + chr(10))"


def test_command_and_webhook_hear_done_and_failed_files(setup, events, tmp_path):
    """Both hooks get file, sidecars and outcome, for a success and for a quarantined failure."""
    log = tmp_path / "hook.log"
    with Receiver() as receiver:
        setup.data["defaults"]["hook"] = {
            "command": [sys.executable, "-c", RECORD, str(log)],
            "webhook": receiver.url,
        }
        setup.data["workers"] = 1
        setup.api.script.append(openai_error(400, "Invalid file format."))
        make_wav(setup.inbox / "bad.wav", freq=300)
        with setup.daemon():
            wait_for(lambda: named(events, "file.failed"), what="failure")
            make_wav(setup.inbox / "good.wav", freq=600)
            wait_for(lambda: len(named(events, "hook.ran")) == 4, what="four hook runs")
        bodies = {b["outcome"]: b for b in receiver.bodies}
    assert bodies["done"]["sidecars"] == [str(setup.inbox / "good.txt")]
    assert bodies["done"]["file"] == str(setup.inbox / "good.wav")
    assert bodies["failed"]["error"] == "HTTP 400: Invalid file format."
    assert bodies["failed"]["moved_to"] == str(setup.inbox / "failed" / "bad.wav")
    lines = [json.loads(line) for line in log.read_text().splitlines()]
    assert sorted(line["env"] for line in lines) == ["done", "failed"]
    assert {line["stdin"]["outcome"] for line in lines} == {"done", "failed"}


@pytest.mark.parametrize("kind", ["command", "webhook"])
def test_failing_hook_is_logged_and_the_transcript_kept(setup, events, kind):
    """A hook that exits non-zero or answers 500 is a hook.failed event; the sidecar stays."""
    with Receiver(status=500) as receiver:
        hook = (
            {"command": [sys.executable, "-c", "raise SystemExit(3)"]}
            if kind == "command"
            else {"webhook": receiver.url}
        )
        setup.data["defaults"]["hook"] = hook
        make_wav(setup.inbox / "h.wav")
        with setup.daemon():
            wait_for(lambda: named(events, "hook.failed"), what="hook failure")
    failure = named(events, "hook.failed")[0]
    assert failure["kind"] == kind
    assert failure.get("exit_code", failure.get("status")) in {3, 500}
    assert (setup.inbox / "h.txt").read_text() == "transcript of h.wav\n"
    assert named(events, "file.done")
