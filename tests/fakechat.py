"""A real OpenAI-compatible chat server on 127.0.0.1 (PROTOCOL.md 7.4), as strict as the
real ones: models named ``new-*`` refuse ``max_tokens`` (400 ``unsupported_parameter``,
OpenAI's body) and a temperature other than 1; every model has a context window (400
``context_length_exceeded`` with OpenAI's message naming it); an answer longer than
``max_tokens`` is cut, with ``finish_reason: "length"``; scripted replies (429 with
Retry-After, 503, dropped connections) go first.

It answers deterministically from the prompt: a translation turns each numbered line
``[n] text`` into ``[n] <lang>: text`` (so a test sees every cue translated once, in
order); a summary names the words it was given; part notes ("take notes") list them."""

from __future__ import annotations

import collections
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

CHARS_PER_TOKEN = 4
LANG = re.compile(r"language with the code (\S+?)\.")


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False


def tokens(text: str) -> int:
    return max(1, len(text) // CHARS_PER_TOKEN)


def error(
    status: int, message: str, code: str | None, param: str | None = None, **headers: str
) -> Reply:
    body = {
        "error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}
    }
    return Reply(status, body, dict(headers))


def answer_for(messages: list[dict[str, str]]) -> str:
    system = messages[0]["content"] if messages else ""
    user = messages[-1]["content"] if messages else ""
    if system.startswith("Translate subtitles"):
        lang = (LANG.search(system) or [None, "xx"])[1]
        part = user.split("Translate:\n", 1)[-1]
        lines = [line for line in part.splitlines() if re.match(r"\[\d+\] ", line)]
        return "\n".join(re.sub(r"^(\[\d+\]) ", rf"\1 {lang}: ", line) for line in lines)
    words = len(user.split())
    if system.startswith("You take notes"):
        said = user.split()
        return f"- notes on {words} words, {said[0]} to {said[-1]}" if said else "- nothing"
    title = "Meeting" if "custom" not in system else "Custom"
    return (
        f"# {title}\n\n## Summary\n\nA talk of {words} words.\n\n## Key points\n\n- one\n\n"
        "## Decisions\n\n- None\n\n## Action items\n\n- Ana: send notes (Friday)"
    )


def meeting(minutes: float, words_per_segment: int = 25) -> dict[str, Any]:
    """A transcription API's verbose_json answer for a meeting of ``minutes``: 10-second
    segments of numbered words (``w1 w2 ...``, about 150 a minute), a pause of 3 s every
    sixth segment (a new paragraph), so a test can see every word used once, in order."""
    segments, start, n = [], 0.0, 0
    while start < minutes * 60:
        text = " ".join(f"w{n + k + 1}" for k in range(words_per_segment))
        n += words_per_segment
        segments.append({"id": len(segments), "start": start, "end": start + 10.0, "text": text})
        start += 13.0 if len(segments) % 6 == 0 else 10.0
    return {
        "task": "transcribe",
        "language": "english",
        "duration": start,
        "text": " ".join(seg["text"] for seg in segments),
        "segments": segments,
    }


class FakeChat:
    def __init__(self, api_key: str | None = None, context: int = 8192) -> None:
        self.api_key = api_key
        self.context = context  # tokens, every model
        self.requests: list[dict[str, Any]] = []
        self.replies: list[str] = []  # what each request was answered: "200", "429", ...
        self.script: collections.deque[Reply] = collections.deque()
        self.down = False  # answer every request 503 (an outage)
        self.always: Reply | None = None  # answer every request so (a refusal, say)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def reply(self, body: dict[str, Any]) -> Reply:
        model = str(body.get("model", ""))
        messages = body.get("messages")
        if not isinstance(messages, list) or not model:
            return error(400, "you must provide a model and messages", None)
        if model.startswith("new-") and "max_tokens" in body:
            return error(
                400,
                "Unsupported parameter: 'max_tokens' is not supported with this model."
                " Use 'max_completion_tokens' instead.",
                "unsupported_parameter",
                "max_tokens",
            )
        if model.startswith("new-") and body.get("temperature", 1) != 1:
            return error(
                400,
                f"Unsupported value: 'temperature' does not support {body['temperature']} with"
                " this model. Only the default (1) value is supported.",
                "unsupported_value",
                "temperature",
            )
        limit = body.get("max_completion_tokens", body.get("max_tokens", 4096))
        sent = sum(tokens(str(m.get("content", ""))) for m in messages)
        if sent + limit > self.context:
            return error(
                400,
                f"This model's maximum context length is {self.context} tokens. However, you"
                f" requested {sent + limit} tokens ({sent} in the messages, {limit} in the"
                " completion). Please reduce the length of the messages or completion.",
                "context_length_exceeded",
                "messages",
            )
        text = answer_for(messages)
        finish = "stop"
        if tokens(text) > limit:
            text, finish = text[: limit * CHARS_PER_TOKEN], "length"
        return Reply(
            200,
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": text},
                        "finish_reason": finish,
                    }
                ],
                "usage": {
                    "prompt_tokens": sent,
                    "completion_tokens": tokens(text),
                    "total_tokens": sent + tokens(text),
                },
            },
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        chat = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                raw = self.rfile.read(length)
                if not self.path.endswith("/chat/completions"):
                    return self._send(error(404, f"no route {self.path}", None))
                if chat.api_key and self.headers.get("authorization") != f"Bearer {chat.api_key}":
                    return self._send(error(401, "Incorrect API key provided.", "invalid_api_key"))
                try:
                    body = json.loads(raw)
                except ValueError:
                    return self._send(error(400, "We could not parse the JSON body.", None))
                with chat._lock:
                    chat.requests.append(body)
                    scripted = chat.script.popleft() if chat.script else None
                reply = (
                    scripted
                    or chat.always
                    or (
                        error(503, "The server is overloaded.", None)
                        if chat.down
                        else chat.reply(body)
                    )
                )
                with chat._lock:
                    chat.replies.append("drop" if reply.drop else str(reply.status))
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return None
                return self._send(reply)

            def _send(self, reply: Reply) -> None:
                data = json.dumps(reply.body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in reply.headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        return Handler
