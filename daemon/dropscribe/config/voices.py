"""speakers: and voices: in the config, checked against what each endpoint can do, and
the known voices (short clips named after people) read for the requests that take them."""

from __future__ import annotations

import base64
import functools
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe.audio import probe
from dropscribe.config.schema import AUDIO_EXTENSIONS, SpeakerCount
from dropscribe.errors import PermanentError
from dropscribe.transcribe import kinds, models

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.config.locate import KeyPath
    from dropscribe.config.schema import Endpoint

SHORTEST, LONGEST = 2.0, 10.0  # seconds a known voice's clip may last (OpenAI's rule)
MIME = {"wav": "audio/wav", "mp3": "audio/mpeg", "m4a": "audio/mp4", "flac": "audio/flac"}
LOCAL_WHY = (
    "kind: local cannot label speakers: pyannote, the open diarization model, takes hours"
    " per hour of audio on a CPU and its models must be downloaded with a Hugging Face"
    " token; use an endpoint that labels speakers (gpt-4o-transcribe-diarize, kind:"
    " mistral, together or asr)"
)


@dataclass(frozen=True)
class Voice:
    """A known voice: a person's name and a clip of them speaking."""

    name: str
    path: Path
    seconds: float
    mime: str = field(default="audio/wav", repr=False)

    @property
    def data_url(self) -> str:
        st = self.path.stat()
        return _data_url(self.path, self.mime, (st.st_mtime_ns, st.st_size))


@functools.lru_cache(maxsize=32)
def _data_url(path: Path, mime: str, stamp: tuple[int, int]) -> str:  # noqa: ARG001 - the key
    return f"data:{mime};base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def clips(folder: Path) -> tuple[Voice, ...]:
    """The clips in ``folder``, by file name (the name is the stem), with their lengths.
    Raise PermanentError naming what a person must change."""
    try:
        stamp = folder.stat().st_mtime_ns
    except OSError:
        raise PermanentError(f"voices folder {folder} does not exist") from None
    return _clips(folder, stamp)


@functools.lru_cache(maxsize=32)
def _clips(folder: Path, stamp: int) -> tuple[Voice, ...]:  # noqa: ARG001 - the key
    if not folder.is_dir():
        raise PermanentError(f"voices folder {folder} is not a folder")
    found = sorted(
        p
        for p in folder.iterdir()
        if p.is_file() and p.suffix.lower().lstrip(".") in AUDIO_EXTENSIONS
    )
    if not found:
        raise PermanentError(f"voices folder {folder} holds no audio clip")
    if len(found) > kinds.MOST_VOICES:
        raise PermanentError(
            f"voices folder {folder} holds {len(found)} clips; at most {kinds.MOST_VOICES}"
            " known voices go with a request"
        )
    voices = []
    for path in found:
        seconds = probe.examine(path).duration
        if seconds is None or not SHORTEST <= seconds <= LONGEST:
            said = "of unknown length" if seconds is None else f"{seconds:.1f} s long"
            raise PermanentError(
                f"voice clip {path} is {said}; a known voice needs {SHORTEST:g} to"
                f" {LONGEST:g} s of that person speaking"
            )
        extension = path.suffix.lower().lstrip(".")
        voices.append(Voice(path.stem, path, seconds, MIME.get(extension, f"audio/{extension}")))
    return tuple(voices)


def check(
    endpoint: Endpoint,
    values: dict[str, Any],
    where: KeyPath,
    problem: Callable[[KeyPath, str], None],
) -> None:
    """Report what the endpoint cannot do of a level's speakers: and voices:."""
    said = values.get("speakers")
    model = values.get("model", "")
    if said:
        if endpoint.kind == "local":
            problem((*where, "speakers"), LOCAL_WHY)
        elif endpoint.kind not in kinds.SPEAKING:
            problem(
                (*where, "speakers"),
                f"endpoint {endpoint.name!r} (kind: {endpoint.kind}) gives no speaker labels;"
                " use gpt-4o-transcribe-diarize, or kind: mistral, together or asr",
            )
        elif endpoint.kind in models.OPENAI_SHAPED and (
            models.of(endpoint, model).timed != "diarized_json"
        ):
            problem(
                (*where, "speakers"),
                f"model {model!r} gives no speaker labels; use gpt-4o-transcribe-diarize",
            )
        elif isinstance(said, SpeakerCount) and endpoint.kind not in kinds.COUNTED:
            problem(
                (*where, "speakers"),
                f"endpoint {endpoint.name!r} (kind: {endpoint.kind}) takes no speaker count;"
                " say speakers: true",
            )
    folder = values.get("voices")
    if folder is None:
        return
    if not said:
        problem((*where, "voices"), "voices: needs speakers: (known voices label speakers)")
    elif endpoint.kind not in kinds.KNOWN_VOICES:
        problem(
            (*where, "voices"),
            f"endpoint {endpoint.name!r} (kind: {endpoint.kind}) takes no known voices;"
            " OpenAI's gpt-4o-transcribe-diarize does",
        )
    try:
        clips(Path(folder))
    except PermanentError as exc:
        problem((*where, "voices"), str(exc))
