"""``language_model:``, the faster-whisper model a folder's recordings' language is heard
with (``jobs/spoken.py``), checked when the config is read, every problem at its key:

- a folder (a path: absolute, ``~``, ``./``, or one that is there relative to the
  config file's folder) must be readable and hold a faster-whisper model: ``model.bin``
  (a regular file), ``config.json`` (JSON), a vocabulary (``vocabulary.json`` or
  ``.txt``) of a multilingual model (CTranslate2's rule: 51,865 tokens or more; fewer
  is English only, which hears no language); the folder then stands as found;
- a name is one of faster-whisper's (fetched where the machine can) or a Hugging Face
  repository (``owner/name``), and not an English-only one (``*.en``).
"""

from __future__ import annotations

import json
import os
import stat
from typing import TYPE_CHECKING, Any

from dropscribe.config import files

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.config.locate import KeyPath

KEY = "language_model"
MULTILINGUAL_VOCABULARY = 51865  # as transcribe/english.py: a smaller one is English only
VOCABULARY_BYTES = 16 << 20  # Whisper's is about 1 MB
# faster-whisper's own names (faster_whisper/utils.py _MODELS), the multilingual ones
NAMES = frozenset(
    {
        *("tiny", "base", "small", "medium", "large", "large-v1", "large-v2", "large-v3"),
        *("large-v3-turbo", "turbo", "distil-large-v2", "distil-large-v3", "distil-large-v3.5"),
    }
)
FIX = "a multilingual faster-whisper model: a name such as base or small, or its folder"


def check(values: dict[str, Any], base: Path, where: KeyPath, problem: Any) -> None:
    """The level's ``language_model`` checked (a folder made absolute), or ``problem``
    told at its key and the setting dropped."""
    name = values.get(KEY)
    if name is None:
        return
    at = (*where, KEY)
    try:
        folder = files.expanded(str(name), base)
    except files.UnusableError as exc:
        problem(at, str(exc))
        del values[KEY]
        return
    if not (name.startswith(("/", "~", ".")) or os.path.lexists(folder)):
        if why := _named(name):
            problem(at, why)
            del values[KEY]
        return
    if why := _folder(folder):
        problem(at, f"{folder}: {why}")
        del values[KEY]
        return
    values[KEY] = str(folder)


def _named(name: str) -> str | None:
    """Why model ``name`` (no folder) cannot hear languages, or None."""
    if name.rstrip("/").endswith(".en"):
        return f"model {name!r} knows English only and cannot hear languages; use {FIX}"
    if "/" in name.strip("/") or name in NAMES:
        return None  # fetched where the machine can, or found in its cache
    return (
        f"{name!r} is no folder here (relative to the config file's folder) and no"
        f" faster-whisper model name ({', '.join(sorted(NAMES))}); use {FIX}"
    )


def _folder(folder: Path) -> str | None:
    """Why ``folder`` holds no multilingual faster-whisper model, or None."""
    try:
        names = {entry.name for entry in os.scandir(folder)}
    except NotADirectoryError:
        return f"not a folder; use {FIX}"
    except FileNotFoundError:
        return f"there is no such folder; use {FIX}"
    except OSError as exc:
        return f"cannot be read ({files.unreadable(exc)})"
    missing = [n for n in ("model.bin", "config.json") if n not in names]
    vocabulary = next((n for n in ("vocabulary.json", "vocabulary.txt") if n in names), "")
    if not vocabulary:
        missing.append("vocabulary.json")
    if missing:
        return f"no faster-whisper model: it has no {', '.join(missing)}"
    if why := _regular(folder / "model.bin"):
        return why
    try:
        json.loads(files.read(folder / "config.json"))
        text = files.read(folder / vocabulary, VOCABULARY_BYTES).decode("utf-8")
        size = len(json.loads(text)) if vocabulary.endswith(".json") else len(text.splitlines())
    except OSError as exc:
        return f"cannot read {exc.filename or vocabulary}: {files.unreadable(exc)}"
    # UnicodeDecodeError and JSONDecodeError are ValueErrors; JSON nested past Python's
    # limit is a RecursionError (review14: check-config's traceback)
    except (ValueError, TypeError, RecursionError):
        return "its config.json or vocabulary is not a faster-whisper model's"
    if size < MULTILINGUAL_VOCABULARY:
        return (
            f"the model knows English only ({size:,} tokens in {vocabulary}) and cannot"
            f" hear languages; use {FIX}"
        )
    return None


def _regular(path: Path) -> str | None:
    """Why ``path`` cannot be read as a model's weights (opened without blocking)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as exc:
        return f"cannot read {path.name}: {files.unreadable(exc)}"
    try:
        mode = os.fstat(fd).st_mode
    finally:
        os.close(fd)
    return None if stat.S_ISREG(mode) else f"{path.name} is not a regular file"
