"""A real OpenAI-compatible transcription server on 127.0.0.1, for tests and benchmarks.

It parses the multipart body as a stream (memory stays flat for a 1 GB upload),
records what each request carried, and answers in the shapes of PROTOCOL.md:
``json`` / ``text`` / ``verbose_json`` / ``diarized_json`` bodies, OpenAI error
bodies, Retry-After headers, dropped connections and stalls, scripted per request.

It is as strict as the real servers (PROTOCOL.md section 6): each kind knows its
models, and each model its formats, timestamps, prompt, translation,
``chunking_strategy`` and duration rules, refused with the provider's own error
body; gpt-4o answers stop after 2,000 output tokens, silently, as OpenAI's do.
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import re
import socket
import tempfile
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qs

if TYPE_CHECKING:
    from collections.abc import Callable

CHUNK = 64 * 1024
TIMED = ("verbose_json", "diarized_json")


@dataclass
class Upload:
    """What one request carried."""

    path: str
    headers: dict[str, str]
    fields: dict[str, str]
    filename: str | None = None
    multi: dict[str, list[str]] = field(default_factory=dict)  # every value of each field
    file_field: str | None = None
    content_type: str | None = None
    size: int = 0
    sha256: str = ""
    at: float = 0.0
    finished: float = 0.0  # when its answer was sent (0: never, e.g. the client died)
    reply: str = ""  # what it was answered: "200", "429", "drop", "stall", ...
    spool: Any = None  # the file part, kept when the server listens to the audio
    seconds: float = 0.0  # how much audio it held (when listened to)
    tones: list[tuple[float, float, int]] = field(default_factory=list)  # start, end, Hz


@dataclass
class Reply:
    """A scripted answer. ``status=0`` with ``drop`` closes the connection instead."""

    status: int = 200
    body: Any = None  # dict -> JSON, str -> sent as is
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False
    stall: float = 0.0  # seconds to wait before answering (released early on shutdown)
    content_type: str = "application/json"
    trickle: float = 0.0  # send the body one byte per this many seconds
    raw: bytes | None = None  # the body's bytes as they are (compressed, say)


def openai_error(
    status: int,
    message: str,
    type_: str = "invalid_request_error",
    code: str | None = None,
    **headers: str,
) -> Reply:
    body = {"error": {"message": message, "type": type_, "param": None, "code": code}}
    return Reply(status, body, dict(headers))


@dataclass(frozen=True)
class Rules:
    """What one model takes on this server (PROTOCOL.md section 6.1, 6.2)."""

    formats: frozenset[str]
    granularities: bool = False  # timestamp_granularities[] (with verbose_json)
    prompt: bool = True
    translate: bool = False
    chunking: str = "refused"  # refused | optional | required (over 30 s)
    max_seconds: float | None = None  # longer audio: 400 invalid_value
    output_tokens: int | None = None  # answers silently cut after this many words
    usage: str = "duration"  # what json answers count: duration or tokens
    # gpt-transcribe (PROTOCOL.md 7.2): languages[] and keywords[]; language and
    # temperature refused; the answer has languages and usage.seconds, no duration
    listed: bool = False
    word_times: bool = True  # Voxtral 3 refuses timestamp_granularities=word (7.3)
    language_with_times: bool = True  # reported of Voxtral 3: not both (7.3)


ALL_FORMATS = frozenset({"json", "text", "srt", "vtt", "verbose_json"})
GPT4O = Rules(
    frozenset({"json"}), chunking="optional", max_seconds=1400, output_tokens=2000, usage="tokens"
)
OPENAI_MODELS = {
    "whisper-1": Rules(ALL_FORMATS, granularities=True, translate=True),
    "gpt-4o-transcribe": GPT4O,
    "gpt-4o-mini-transcribe": GPT4O,
    "gpt-4o-mini-transcribe-2025-12-15": GPT4O,
    "gpt-4o-transcribe-diarize": Rules(
        frozenset({"json", "text", "diarized_json"}),
        prompt=False,
        chunking="required",
        max_seconds=1400,
    ),
    "gpt-transcribe": Rules(
        frozenset({"json"}), chunking="optional", max_seconds=1400, output_tokens=2000, listed=True
    ),
}
GROQ_MODELS = {
    "whisper-large-v3": Rules(
        frozenset({"json", "text", "verbose_json"}), granularities=True, translate=True
    ),
    "whisper-large-v3-turbo": Rules(
        frozenset({"json", "text", "verbose_json"}), granularities=True
    ),
}
# Self-hosted servers load whatever model they are given; these rules hold for any name.
ANY_MODEL = {
    "speaches": Rules(ALL_FORMATS, granularities=True, translate=True),
    "localai": Rules(ALL_FORMATS | {"lrc"}, granularities=True, translate=True),
    "vllm": Rules(frozenset({"json", "text", "verbose_json"}), granularities=True, translate=True),
    "whispercpp": Rules(ALL_FORMATS, translate=True),
    "asr": Rules(frozenset({"json", "text", "vtt", "srt", "tsv"}), translate=True),
}
# Mistral: no response_format, no prompt (422 extra_forbidden), about three hours a request.
VOXTRAL = Rules(frozenset({"json"}), max_seconds=10_800)
# Voxtral 3 (PROTOCOL.md 7.3): no word times, and (as one client reports) no language
# beside timestamp_granularities.
VOXTRAL_3 = Rules(
    frozenset({"json"}), max_seconds=10_800, word_times=False, language_with_times=False
)
MISTRAL_MODELS = dict.fromkeys(
    ("voxtral-mini-2602", "voxtral-small-2507"), VOXTRAL
) | dict.fromkeys(
    (
        "voxtral-mini-transcribe-3-0",
        "voxtral-mini-transcribe-3",
        "voxtral-mini-transcribe-latest",
        "voxtral-small-transcribe-3",
        "voxtral-mini-latest",
    ),
    VOXTRAL_3,
)
TOGETHER_MODELS = {
    "openai/whisper-large-v3": Rules(
        frozenset({"json", "text", "verbose_json"}), granularities=True
    )
}
KNOWN_MODELS = {
    "mistral": MISTRAL_MODELS,
    "together": TOGETHER_MODELS,
    "openai": OPENAI_MODELS,
    "azure": OPENAI_MODELS,
    "gateway": OPENAI_MODELS,
    "groq": GROQ_MODELS,
}


def _invalid(message: str, param: str | None, code: str | None = "invalid_value") -> Reply:
    return Reply(
        400,
        {
            "error": {
                "message": message,
                "type": "invalid_request_error",
                "param": param,
                "code": code,
            }
        },
    )


def _unsupported(name: str, instead: str) -> Reply:
    return _invalid(
        f"Unsupported parameter: '{name}' is not supported with this model.{instead}",
        name,
        "unsupported_parameter",
    )


def _listed_refusal(upload: Upload) -> Reply | None:
    """gpt-transcribe's rules (PROTOCOL.md 7.2): json only; languages[], not language."""
    fields = upload.fields
    if "language" in fields:
        return _unsupported("language", " Use 'languages' instead.")
    for name in ("temperature", "timestamp_granularities[]", "include[]"):
        if name in fields:
            return _unsupported(name.removesuffix("[]"), "")
    if fields.get("response_format", "json") != "json":
        return _invalid(
            f"response_format '{fields['response_format']}' is not compatible with model"
            f" '{fields.get('model')}'",
            "response_format",
            "unsupported_value",
        )
    languages = upload.multi.get("languages[]")
    if languages is not None and not all(re.fullmatch(r"[a-z]{2}", c) for c in languages):
        return _invalid("languages must be ISO-639-1 codes", "languages")
    return None


# OpenAI's shutdowns as its GET /models says them (PROTOCOL.md 7.1).
SHUTDOWNS = dict.fromkeys(
    (
        "whisper-1",
        "gpt-4o-transcribe",
        "gpt-4o-mini-transcribe",
        "gpt-4o-mini-transcribe-2025-12-15",
        "gpt-4o-transcribe-diarize",
    ),
    "2027-02-26",
)


def catalogue_of(kind: str, models: dict[str, Rules] | None) -> list[dict[str, Any]] | None:
    """What GET /models lists: OpenAI's with shutdown_date, others without it."""
    if kind in {"whispercpp", "asr"}:
        return None
    out = []
    for name in models or {}:
        item: dict[str, Any] = {"id": name, "object": "model", "owned_by": kind}
        if kind in {"openai", "azure", "gateway"}:
            item["shutdown_date"] = SHUTDOWNS.get(name)
        out.append(item)
    return out


def gone_reply(model: str, how: str) -> Reply:
    """A shut-down model: OpenAI's 404, or a gateway's 503 that names it (PROTOCOL.md 7.1)."""
    if how == "503":
        return Reply(
            503,
            {
                "error": {
                    "message": f"no available channels for model {model}",
                    "type": "new_api_error",
                    "param": "",
                    "code": None,
                }
            },
        )
    return Reply(
        404,
        {
            "error": {
                "message": f"The model `{model}` has been deprecated, learn more here:"
                " https://platform.openai.com/docs/deprecations",
                "type": "invalid_request_error",
                "param": None,
                "code": "model_not_found",
            }
        },
    )


MISTRAL_FIELDS = {
    "model",
    "language",
    "temperature",
    "diarize",
    "context_bias",
    "timestamp_granularities",
}


def _mistral_error(detail: list[dict[str, Any]]) -> Reply:
    """Mistral's 422: pydantic's detail list inside its own error object."""
    return Reply(
        422,
        {
            "object": "error",
            "message": {"detail": [{**d, "input": None} for d in detail]},
            "type": "invalid_request_error",
            "param": None,
            "code": None,
        },
    )


def _fastapi_missing(name: str) -> Reply:
    return Reply(
        422,
        {
            "detail": [
                {"type": "missing", "loc": ["body", name], "msg": "Field required", "input": None}
            ]
        },
    )


def _fastapi_enum(name: str, value: str) -> Reply:
    return Reply(
        422,
        {
            "detail": [
                {
                    "type": "enum",
                    "loc": ["query", name],
                    "msg": "Input should be 'text', 'json', 'vtt', 'srt' or 'tsv'",
                    "input": value,
                }
            ]
        },
    )


def _parse_disposition(value: str) -> dict[str, str]:
    out = {}
    for part in value.split(";")[1:]:
        key, _, val = part.strip().partition("=")
        out[key.lower()] = val.strip('"')
    return out


def read_multipart(
    read: Callable[[int], bytes],
    length: int,
    boundary: bytes,
    upload: Upload,
    spool: Callable[[Upload], Any] | None = None,
):
    """Stream-parse a multipart body into ``upload``: small fields kept, the file hashed
    (and kept in ``upload.spool``, if ``spool`` gives one once the fields before it are
    known)."""
    delim = b"\r\n--" + boundary
    buf = b"\r\n"
    remaining = length

    def fill() -> None:
        nonlocal buf, remaining
        if remaining <= 0:
            raise EOFError("multipart body ended early")
        chunk = read(min(CHUNK, remaining))
        if not chunk:
            raise EOFError("connection closed mid-body")
        remaining -= len(chunk)
        buf += chunk

    while delim not in buf:
        fill()
    buf = buf[buf.index(delim) + len(delim) :]
    while True:
        while len(buf) < 2:
            fill()
        if buf.startswith(b"--"):
            break
        while b"\r\n\r\n" not in buf:
            fill()
        head, buf = buf.split(b"\r\n\r\n", 1)
        headers = {}
        for line in head.decode("utf-8", "replace").split("\r\n"):
            if ":" in line:
                key, _, val = line.partition(":")
                headers[key.strip().lower()] = val.strip()
        disp = _parse_disposition(headers.get("content-disposition", ""))
        is_file = "filename" in disp
        if is_file and upload.spool is None and spool is not None:
            upload.spool = spool(upload)
        digest = hashlib.sha256()
        small = bytearray()
        size = 0

        def sink(data: bytes, is_file: bool = is_file, digest=digest, small=small) -> None:
            nonlocal size
            size += len(data)
            if is_file:
                digest.update(data)
                if upload.spool is not None:
                    upload.spool.write(data)
            else:
                small.extend(data)

        while True:
            idx = buf.find(delim)
            if idx >= 0:
                sink(buf[:idx])
                buf = buf[idx + len(delim) :]
                break
            keep = len(delim) - 1
            if len(buf) > keep:
                sink(buf[:-keep])
                buf = buf[-keep:]
            fill()
        if is_file:
            upload.file_field = disp.get("name")
            upload.filename = disp["filename"]
            upload.content_type = headers.get("content-type")
            upload.size = size
            upload.sha256 = digest.hexdigest()
        else:
            name = disp.get("name", "")
            upload.fields[name] = small.decode("utf-8")
            upload.multi.setdefault(name, []).append(upload.fields[name])
    while remaining > 0:  # the epilogue, if any
        remaining -= len(read(min(CHUNK, remaining)))


def default_answer(upload: Upload) -> dict[str, Any]:
    """A transcript that names the file, with two segments when timestamps were asked for."""
    text = f"transcript of {upload.filename}"
    fmt = upload.fields.get("response_format")  # none: Mistral and asr always give segments
    if fmt is not None and fmt not in TIMED:
        return {"text": text}
    translate = upload.path.partition("?")[0].endswith("translations") or (
        upload.fields.get("translate") == "true"
    )
    answer = {
        "task": "translate" if translate else "transcribe",
        "language": upload.fields.get("language", "english"),
        "text": text,
        "segments": [
            {"id": 0, "seek": 0, "start": 0.0, "end": 1.5, "text": "transcript of"},
            {"id": 1, "seek": 0, "start": 1.5, "end": 3.25, "text": str(upload.filename)},
        ],
    }
    # the audio's length, as a server gives it (known where the server listened to it)
    return {**answer, "duration": upload.seconds} if upload.seconds > 0 else answer


def _reading(spool: Any) -> Any:
    """``av.open`` for reading whatever an upload's tags hold, on every PyAV: before 19 a
    tag that is not UTF-8 fails the file unless its errors are ignored; 19 removed the
    argument (and reads tags byte exact)."""
    import av

    lenient = {"metadata_errors": "ignore"} if int(av.__version__.split(".")[0]) < 19 else {}
    return av.open(spool, "r", **lenient)


def listen(upload: Upload, *, tones: bool = True) -> None:
    """Decode the uploaded audio (PyAV, as a stream) and find its tones: runs of sound at
    least 0.1 s long, each with its frequency from the zero-crossing rate. Without
    ``tones``, only read the container's duration."""
    import av
    import numpy as np

    upload.spool.seek(0)
    if not tones:
        with _reading(upload.spool) as container:
            upload.seconds = (container.duration or 0) / 1_000_000
        return
    per = 160  # 10 ms at 16 kHz
    levels: list[Any] = []
    crossings: list[Any] = []
    pending = np.empty(0, dtype=np.float32)
    last = np.zeros(1)  # the sample before ``pending``: crossings at frame edges count too
    with _reading(upload.spool) as container:
        resampler = av.AudioResampler(format="s16", layout="mono", rate=16000)
        frames = container.decode(container.streams.audio[0])
        for frame in [*frames, None]:
            for out in resampler.resample(frame):
                block = np.concatenate((pending, out.to_ndarray().reshape(-1) / 32768.0))
                whole = len(block) // per * per
                rows = block[:whole].reshape(-1, per)
                signs = np.signbit(np.concatenate((last, block[:whole])))
                if whole:
                    last = block[whole - 1 : whole]
                pending = block[whole:]
                levels.append(np.sqrt(np.mean(rows * rows, axis=1)))
                crossings.append((signs[1:] != signs[:-1]).reshape(-1, per).sum(axis=1))
    level = np.concatenate(levels) if levels else np.empty(0)
    zc = np.concatenate(crossings) if crossings else np.empty(0)
    upload.seconds = len(level) / 100
    loud = np.concatenate(([False], level > 0.02, [False]))
    edges = np.flatnonzero(np.diff(loud.astype(np.int8))).reshape(-1, 2)
    runs: list[list[int]] = []
    for first, end in edges.tolist():
        if runs and first - runs[-1][1] < 10:  # a dip inside a tone (codec artefact)
            runs[-1][1] = end
        else:
            runs.append([first, end])
    for first, end in runs:
        if end - first >= 10:
            inner = zc[first + 1 : end - 1] if end - first > 4 else zc[first:end]
            hertz = float(np.mean(inner)) * 100 / 2
            upload.tones.append((first / 100, end / 100, int(round(hertz, -1))))


def voices(upload: Upload, segments: list[dict[str, Any]], *, letters: bool) -> list[Any]:
    """A speaker label per segment, as a diarizing server gives them: a voice is a
    tone's pitch (``tone <Hz>`` segments; others take turns), numbered or lettered in
    order of appearance *in this request*. With OpenAI's known speakers, a voice whose
    pitch matches a reference clip's is called by that name."""
    known = dict(
        zip(
            (_clip_hertz(url) for url in upload.multi.get("known_speaker_references[]", [])),
            upload.multi.get("known_speaker_names[]", []),
            strict=False,
        )
    )
    order: dict[Any, int] = {}
    out: list[Any] = []
    for n, seg in enumerate(segments):
        found = re.fullmatch(r"\s*tone (\d+)\s*", seg.get("text", ""))
        voice = int(found.group(1)) if found else n % 2
        if voice in known:
            out.append(known[voice])
            continue
        index = order.setdefault(voice, len(order))
        out.append(chr(ord("A") + index % 26) if letters else index)
    return out


def _clip(data_url: str) -> Upload | None:
    """A known speaker's clip, sent as a data URL, decoded (its length and tones); None
    when it is not a data URL of audio."""
    import base64
    import binascii
    import io

    header, _, payload = data_url.partition(",")
    if not header.startswith("data:audio/") or ";base64" not in header:
        return None
    clip = Upload("", {}, {})
    try:
        clip.spool = io.BytesIO(base64.b64decode(payload, validate=True))
        listen(clip)
    except (binascii.Error, ValueError, OSError):
        return None
    return clip


def _clip_hertz(data_url: str) -> int | None:
    """The pitch of a known speaker's clip."""
    clip = _clip(data_url)
    return clip.tones[0][2] if clip is not None and clip.tones else None


def tone_answer(upload: Upload) -> dict[str, Any]:
    """A transcript of what ``listen`` heard: one segment per tone, text ``tone <Hz>``."""
    segments = [
        {"id": n, "seek": 0, "start": start, "end": end, "text": f" tone {hertz}"}
        for n, (start, end, hertz) in enumerate(upload.tones)
    ]
    text = " ".join(seg["text"].strip() for seg in segments)
    fmt = upload.fields.get("response_format")  # none: Mistral and asr always give segments
    if fmt is not None and fmt not in TIMED:
        return {"text": text}
    return {
        "task": "transcribe",
        "language": "english",
        "duration": upload.seconds,
        "text": text,
        "segments": segments,
    }


class FakeAPI:
    """Start with ``with FakeAPI() as api:``; ``api.base_url`` is the endpoint's base URL."""

    def __init__(  # noqa: PLR0917 - the tests' own knobs, most left at their defaults
        self,
        api_key: str | None = None,
        answer=default_answer,
        delay: float = 0.0,
        kind: str = "openai",
        upload_limit: int | None = None,
        loading: int = 0,
        listening: bool = False,
        per_audio_second: float = 0.0,
        models: dict[str, Rules] | None = None,
        port: int = 0,
    ):
        # The models this server knows, and their rules (the kind's by default); a kind
        # of self-hosted server takes any model name with its ANY_MODEL rules.
        self.models = models if models is not None else KNOWN_MODELS.get(kind)
        # Decode every upload (needed by tone_answer); answer after per_audio_second
        # times its length, like a server whose work grows with the audio (that alone
        # reads only the container's duration).
        self.listening = listening or per_audio_second > 0
        self.tones = listening
        self.per_audio_second = per_audio_second
        self.kind = kind  # which server's quirks to emulate (PROTOCOL.md section 4)
        self.upload_limit = upload_limit  # bytes; larger files get the kind's 413
        self.loading = loading  # LocalAI: answer this many requests with 503 "loading"
        self.api_key = api_key
        self.answer = answer
        self.delay = delay  # seconds each answer takes (a transcription is not instant)
        self.uploads: list[Upload] = []
        self.script: collections.deque[Reply] = collections.deque()
        # GET /models (PROTOCOL.md 7.1): each model with OpenAI's shutdown_date where the
        # kind is OpenAI's, without the field elsewhere; None: the route is a 404
        self.catalogue: list[dict[str, Any]] | None = catalogue_of(kind, self.models)
        self.listings = 0  # GET /models requests answered
        self.listing_gate = threading.Event()  # cleared: GET /models waits until it is set
        self.listing_gate.set()
        self.asked = 0  # GET /models requests received (answered or held)
        # models shut down (or withdrawn): "404" as OpenAI answers after the shutdown,
        # "503" as the gateway that withdrew whisper-1 early (PROTOCOL.md 7.1)
        self.gone: dict[str, str] = {}
        self.connections = 0
        self.gate = threading.Event()  # cleared: every request waits until it is set
        self.gate.set()
        self.arrived = threading.Condition()
        self.waiting = 0
        self._closing = threading.Event()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", port), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def root_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.root_url}/v1"

    def spool_for(self, upload: Upload) -> Any:
        """Where to keep the audio of a request the server must listen to."""
        if self.needs_audio(upload):
            return tempfile.TemporaryFile()
        return None

    def rules_for(self, upload: Upload) -> tuple[str, Rules] | None:
        """The model a request names and its rules; None for a model this server lacks."""
        path = upload.path.partition("?")[0]
        model = upload.fields.get("model", "")
        if deployment := re.fullmatch(r"/openai/deployments/([^/]+)/.*", path):
            model = deployment.group(1)
        if self.models is None:
            return model, ANY_MODEL.get(self.kind, ANY_MODEL["speaches"])
        rules = self.models.get(model)
        return (model, rules) if rules is not None else None

    def needs_audio(self, upload: Upload) -> bool:
        """Whether the server must read the audio's length to judge the request."""
        found = self.rules_for(upload)
        return found is not None and (
            found[1].max_seconds is not None or found[1].chunking == "required"
        )

    def refuse(self, upload: Upload) -> Reply | None:
        """The kind's refusal of a request: its route, key, size, or what its model takes."""
        return self._route_refusal(upload) or self._model_refusal(upload)

    def _model_refusal(self, upload: Upload) -> Reply | None:
        """What the request's model does not take, refused as that provider does."""
        if (how := self.gone.get(upload.fields.get("model", ""))) is not None:
            return gone_reply(upload.fields["model"], how)
        if self.kind == "whispercpp":
            return None  # the model field is ignored: whatever was loaded at start
        if self.kind == "mistral":
            extra = set(upload.multi) - MISTRAL_FIELDS
            if extra:
                return _mistral_error(
                    [
                        {
                            "type": "extra_forbidden",
                            "loc": ["body", name],
                            "msg": "Extra inputs are not permitted",
                        }
                        for name in sorted(extra)
                    ]
                )
            for item in upload.multi.get("context_bias", []):
                if re.search(r"[\s,]", item):
                    return _mistral_error(
                        [
                            {
                                "type": "value_error",
                                "loc": ["body", "context_bias"],
                                "msg": "Value error, context_bias items must not contain spaces or commas",
                            }
                        ]
                    )
        if self.kind == "mistral" and (refusal := self._voxtral_refusal(upload)) is not None:
            return refusal
        if self.kind == "together":
            for name in ("min_speakers", "max_speakers"):
                if name in upload.fields and upload.fields.get("diarize") != "true":
                    return _invalid(f"{name} requires diarize=true", name)
        if self.kind == "speaches" and "model" not in upload.fields:  # FastAPI's own 422
            return Reply(
                422,
                {
                    "detail": [
                        {
                            "type": "missing",
                            "loc": ["body", "model"],
                            "msg": "Field required",
                            "input": None,
                        }
                    ]
                },
            )
        found = self.rules_for(upload)
        model = upload.fields.get("model", "")
        if found is None:
            return Reply(
                404,
                {
                    "error": {
                        "message": f"The model '{model}' does not exist or you do not have access to it.",
                        "type": "invalid_request_error",
                        "param": None,
                        "code": "model_not_found",
                    }
                },
            )
        model, rules = found
        fields = upload.fields
        if rules.listed and (refusal := _listed_refusal(upload)) is not None:
            return refusal
        fmt = fields.get("response_format", "json")
        translation = upload.path.partition("?")[0].endswith("/translations") or (
            fields.get("translate") == "true"
        )
        if translation and not rules.translate:
            return _invalid(f"Model {model} is not supported for translations.", "model")
        if upload.path.partition("?")[0].endswith("/translations") and (
            "timestamp_granularities[]" in fields
        ):  # CreateTranslationRequest has no such field
            return _invalid(
                "Unrecognized request argument supplied: timestamp_granularities",
                "timestamp_granularities",
                "unknown_parameter",
            )
        if translation and self.kind == "groq" and fields.get("language", "en") != "en":
            return _invalid("translations only support language 'en'", "language")
        if fmt not in rules.formats:
            if self.kind == "vllm" and fmt == "verbose_json":  # a model without timestamps
                return Reply(
                    400,
                    {
                        "error": {
                            "message": f"Currently do not support verbose_json for {model}",
                            "type": "BadRequestError",
                            "param": None,
                            "code": 400,
                        }
                    },
                )
            if self.kind == "vllm":
                return Reply(
                    400,
                    {
                        "error": {
                            "message": "Currently only support response_format"
                            " `text`, `json` or `verbose_json`",
                            "type": "BadRequestError",
                            "param": None,
                            "code": 400,
                        }
                    },
                )
            return _invalid(
                f"response_format '{fmt}' is not compatible with model '{model}'",
                "response_format",
                "unsupported_value",
            )
        if "timestamp_granularities[]" in fields:
            if not rules.granularities:
                return _invalid(
                    f"timestamp_granularities is not supported with model '{model}'",
                    "timestamp_granularities",
                    "unsupported_value",
                )
            if fmt != "verbose_json":
                return _invalid(
                    "timestamp_granularities requires response_format=verbose_json",
                    "timestamp_granularities",
                )
        names = upload.multi.get("known_speaker_names[]", [])
        if names or "known_speaker_references[]" in fields:
            if "diarized_json" not in rules.formats:
                return _invalid(
                    f"known_speaker_names is not supported with model '{model}'",
                    "known_speaker_names",
                    "unsupported_value",
                )
            if len(names) > 4 or len(names) != len(
                upload.multi.get("known_speaker_references[]", [])
            ):
                return _invalid(
                    "known_speaker_names and known_speaker_references must have the same"
                    " length, at most 4",
                    "known_speaker_names",
                )
            for reference in upload.multi.get("known_speaker_references[]", []):
                clip = _clip(reference)
                if clip is None or not 2.0 <= clip.seconds <= 10.0:
                    return _invalid(
                        "known_speaker_references must be data URLs of audio clips"
                        " between 2 and 10 seconds long",
                        "known_speaker_references",
                    )
        if "prompt" in fields and not rules.prompt:
            return _invalid(
                "Prompt is not supported for diarization models", "prompt", "unsupported_value"
            )
        chunking = [k for k in fields if k.startswith("chunking_strategy")]
        if chunking and rules.chunking == "refused":
            return _invalid(
                f"chunking_strategy is not supported with model '{model}'",
                "chunking_strategy",
                "unsupported_value",
            )
        if chunking and (
            chunking != ["chunking_strategy"] or fields["chunking_strategy"] != "auto"
        ):
            return _invalid(
                "Invalid value for chunking_strategy: expected 'auto'", "chunking_strategy"
            )
        if "include[]" in fields and (fmt != "json" or rules.usage != "tokens"):
            return _invalid(
                "include[]=logprobs is only supported with json on gpt-4o models", "include"
            )
        language = fields.get("language")
        if language is not None and not re.fullmatch(r"[a-z]{2}|auto", language):
            return _invalid(
                f"Invalid language '{language}'. Language parameter must be"
                " specified in ISO-639-1 format.",
                "language",
            )
        if rules.max_seconds is not None and upload.seconds > rules.max_seconds:
            return _invalid(
                f"audio duration {upload.seconds} seconds is longer than"
                f" {rules.max_seconds:g} seconds which is the maximum for this"
                " model",
                None,
            )
        if rules.chunking == "required" and upload.seconds > 30 and not chunking:
            return _invalid(
                "chunking_strategy is required for diarization models", "chunking_strategy"
            )
        return None

    def shaped(self, upload: Upload, answer: dict[str, Any]) -> Reply:
        """A 200 in the format asked for, from an answer in verbose_json's shape."""
        fmt = upload.fields.get("response_format", "json")
        found = self.rules_for(upload)
        rules = found[1] if found is not None else None
        text = answer.get("text")
        if not isinstance(text, str):
            return Reply(200, answer)  # a malformed answer, as the test made it
        if rules is not None and rules.output_tokens is not None:
            words = text.split()
            text = " ".join(words[: rules.output_tokens])  # silently cut, as OpenAI does
        if self.kind in {"mistral", "asr", "together"}:
            return self._speaking(upload, answer)
        if fmt == "text":
            return Reply(200, text + "\n", content_type="text/plain")
        if fmt == "diarized_json":
            labels = voices(upload, answer.get("segments", []), letters=True)
            segments = [
                {
                    "type": "transcript.text.segment",
                    "id": f"seg_{n:03d}",
                    "start": seg["start"],
                    "end": seg["end"],
                    "text": seg["text"],
                    "speaker": label,
                }
                for n, (seg, label) in enumerate(
                    zip(answer.get("segments", []), labels, strict=True)
                )
            ]
            return Reply(
                200,
                {
                    "task": "transcribe",
                    "duration": answer.get("duration", 0.0),
                    "text": text,
                    "segments": segments,
                    "usage": {"type": "duration", "seconds": 1},
                },
            )
        if fmt == "json" and rules is not None and rules.listed:
            codes = upload.multi.get("languages[]") or ["en"]
            return Reply(
                200,
                {
                    "text": text,
                    "languages": [{"code": code} for code in codes],
                    "usage": {"type": "duration", "seconds": math.ceil(upload.seconds or 1)},
                },
            )
        if fmt == "json" and rules is not None and rules.usage == "tokens":
            count = len(text.split())
            return Reply(
                200,
                {
                    "text": text,
                    "usage": {
                        "type": "tokens",
                        "input_tokens": 10,
                        "output_tokens": count,
                        "total_tokens": 10 + count,
                    },
                },
            )
        if fmt == "json":
            return Reply(200, {"text": text})
        return Reply(200, {**answer, "text": text})

    def _speaking(self, upload: Upload, answer: dict[str, Any]) -> Reply:
        """Mistral's, whisper-asr-webservice's and Together's answers (PROTOCOL.md 6.2),
        with speaker labels that restart in every request, as theirs do."""
        segments = answer.get("segments") or [
            {"start": 0.0, "end": max(upload.seconds, 1.0), "text": answer.get("text", "")}
        ]
        query = parse_qs(upload.path.partition("?")[2])
        diarize = upload.fields.get("diarize") == "true" or query.get("diarize") == ["true"]
        labels = voices(upload, segments, letters=False) if diarize else [None] * len(segments)
        text = answer.get("text", "")
        plain = [{"start": s["start"], "end": s["end"], "text": s["text"]} for s in segments]
        if self.kind == "mistral":
            out = [
                {**seg, **({"speaker_id": f"speaker_{label}"} if label is not None else {})}
                for seg, label in zip(plain, labels, strict=True)
            ]
            return Reply(
                200,
                {
                    "model": upload.fields.get("model"),
                    "text": text,
                    "language": "en",
                    "segments": out,
                },
            )
        if self.kind == "asr":
            out = []
            for seg, label in zip(plain, labels, strict=True):
                who = {"speaker": f"SPEAKER_{label:02d}"} if label is not None else {}
                words = [
                    {"word": w, "start": seg["start"], "end": seg["end"], **who}
                    for w in seg["text"].split()
                ]
                out.append({**seg, **who, "words": words})
            return Reply(200, {"text": text, "segments": out, "language": "en"})
        body: dict[str, Any] = {
            "task": "transcribe",
            "language": "english",
            "duration": upload.seconds,
            "text": text,
        }
        if upload.fields.get("response_format") == "verbose_json":
            body["segments"] = plain
        if diarize:
            body["speaker_segments"] = [
                {"speaker_id": f"SPEAKER_{label}", **seg, "words": []}
                for seg, label in zip(plain, labels, strict=True)
            ]
        return Reply(200, body)

    def _voxtral_refusal(self, upload: Upload) -> Reply | None:
        """Voxtral 3's 400s (PROTOCOL.md 7.3), in Mistral's error object."""
        found = self.rules_for(upload)
        granularity = upload.fields.get("timestamp_granularities")
        if found is None or granularity is None:
            return None
        rules = found[1]
        message = None
        if granularity == "word" and not rules.word_times:
            message = "timestamp_granularities 'word' is not supported by this model"
        elif "language" in upload.fields and not rules.language_with_times:
            message = "language cannot be used together with timestamp_granularities"
        if message is None:
            return None
        body = {"object": "error", "message": message, "type": "invalid_request_error"}
        return Reply(400, body | {"param": None, "code": None})

    def _route_refusal(self, upload: Upload) -> Reply | None:
        """The kind's own answer for a wrong route, a bad key, a too large body, or loading."""
        path, _, query = upload.path.partition("?")
        kind = self.kind
        if kind == "azure":
            classic = (
                re.fullmatch(r"/openai/deployments/[^/]+/audio/(transcriptions|translations)", path)
                and "api-version=" in query
            )
            v1 = re.fullmatch(r"/openai/v1/audio/(transcriptions|translations)", path)
            if not (classic or v1):
                return Reply(404, {"error": {"code": "404", "message": "Resource not found"}})
            if self.api_key is not None and upload.headers.get("api-key") != self.api_key:
                return Reply(
                    401,
                    {
                        "error": {
                            "code": "401",
                            "message": "Access denied due to invalid subscription key.",
                        }
                    },
                )
            return None
        if kind == "whispercpp":
            if path != "/inference":
                return Reply(404, "File Not Found", content_type="text/plain")
            return None
        if kind == "asr":  # whisper-asr-webservice: FastAPI, no auth, options in the query
            if path != "/asr":
                return Reply(404, {"detail": "Not Found"})
            if upload.file_field != "audio_file":
                return _fastapi_missing("audio_file")
            output = parse_qs(query).get("output", ["text"])[0]
            if output not in ANY_MODEL["asr"].formats:
                return _fastapi_enum("output", output)
            return None
        if not path.endswith(("/audio/transcriptions", "/audio/translations")):
            return openai_error(404, f"no route {path}")
        if kind == "localai" and path.endswith("/translations"):
            return Reply(404, {"error": {"code": 404, "message": "Cannot POST", "type": ""}})
        bearer = upload.headers.get("authorization")
        if self.api_key is not None and bearer != f"Bearer {self.api_key}":
            if kind == "speaches":
                return Reply(403, {"detail": "Invalid API key"})
            return openai_error(401, "Incorrect API key provided.", code="invalid_api_key")
        if self.upload_limit is not None and upload.size > self.upload_limit:
            if kind == "localai":
                return Reply(
                    413, {"error": {"code": 413, "message": "Request Entity Too Large", "type": ""}}
                )
            return openai_error(413, "Maximum content size limit exceeded", type_="server_error")
        if kind == "localai" and self.loading > 0:
            self.loading -= 1
            return Reply(
                503,
                {"error": {"code": 503, "message": "loading model"}},
                headers={"Retry-After": "1"},
            )
        return None

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._closing.set()
        self.gate.set()
        self.listing_gate.set()
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def hold(self) -> None:
        """Make every request wait (after its body is read) until ``release()``."""
        self.gate.clear()

    def release(self) -> None:
        self.gate.set()

    def wait_waiting(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` requests are held at the gate (``timeout``: what an idle
        machine needs, scaled by the suite's patience as every deadline is)."""
        from conftest import patience  # here: conftest imports this module

        with self.arrived:
            return self.arrived.wait_for(lambda: self.waiting >= count, patience(timeout))

    def _next_reply(self, upload: Upload) -> Reply:
        with self._lock:
            if self.script:
                return self.script.popleft()
        return self.shaped(upload, self.answer(upload))

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                # Headers and body leave in two writes: without NODELAY, Nagle and the
                # client's delayed ACK add 40 ms to every answer.
                self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                with api._lock:
                    api.connections += 1

            def log_message(self, format: str, *args: object) -> None:  # noqa: A002
                return

            def _send(self, reply: Reply) -> None:
                body = reply.body
                data = reply.raw
                if data is None:
                    data = (json.dumps(body) if not isinstance(body, str) else body).encode()
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", f"req_{threading.get_ident()}_{len(api.uploads)}")
                for key, val in reply.headers.items():
                    self.send_header(key, val)
                self.end_headers()
                if not reply.trickle:
                    self.wfile.write(data)
                    return
                for n in range(len(data)):
                    if api._closing.wait(reply.trickle):
                        return
                    self.wfile.write(data[n : n + 1])
                    self.wfile.flush()

            def do_GET(self) -> None:
                path = self.path.partition("?")[0]
                bearer = self.headers.get("authorization")
                if not path.endswith("/models") or api.catalogue is None:
                    self._send(openai_error(404, f"no route {path}"))
                elif api.api_key is not None and bearer != f"Bearer {api.api_key}":
                    self._send(openai_error(401, "Incorrect API key provided."))
                else:
                    with api.arrived:
                        api.asked += 1  # GET /models requests received
                        api.arrived.notify_all()
                    api.listing_gate.wait()
                    with api._lock:
                        api.listings += 1
                    self._send(Reply(200, {"object": "list", "data": api.catalogue}))

            def do_POST(self) -> None:
                import time

                upload = Upload(
                    self.path,
                    {k.lower(): v for k, v in self.headers.items()},
                    {},
                    at=time.monotonic(),
                )
                length = int(self.headers.get("Content-Length", "0"))
                ctype = self.headers.get("Content-Type", "")
                if "boundary=" not in ctype:
                    self._send(openai_error(400, "expected multipart/form-data"))
                    return
                boundary = ctype.split("boundary=", 1)[1].strip('"').encode()
                if api.listening:
                    upload.spool = tempfile.TemporaryFile()  # noqa: SIM115 - closed below
                try:
                    read_multipart(self.rfile.read, length, boundary, upload, spool=api.spool_for)
                    if upload.spool is not None:
                        listen(upload, tones=api.tones)
                except EOFError:
                    self.close_connection = True
                    return
                except Exception as exc:
                    upload.reply = "400"
                    with api._lock:
                        api.uploads.append(upload)
                    self._send(openai_error(400, f"could not decode audio: {exc}"))
                    return
                finally:
                    if upload.spool is not None:
                        upload.spool.close()
                with api._lock:
                    api.uploads.append(upload)
                if not api.gate.is_set():
                    with api.arrived:
                        api.waiting += 1
                        api.arrived.notify_all()
                    api.gate.wait()
                    with api.arrived:
                        api.waiting -= 1
                with api._lock:
                    refusal = api.refuse(upload)
                if refusal is not None:
                    upload.reply = str(refusal.status)
                    self._send(refusal)
                    return
                reply = api._next_reply(upload)
                upload.reply = (
                    "drop" if reply.drop else "stall" if reply.stall else str(reply.status)
                )
                if api.delay or api.per_audio_second:
                    api._closing.wait(api.delay + api.per_audio_second * upload.seconds)
                if reply.stall:
                    api._closing.wait(reply.stall)
                if reply.drop:
                    self.close_connection = True
                    self.connection.shutdown(2)
                    return
                self._send(reply)
                upload.finished = time.monotonic()

        return Handler
