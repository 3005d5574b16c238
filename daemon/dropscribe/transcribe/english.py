"""Which languages are English, and which local models know English only: light (no
numpy, no PyAV), so that loading a config can ask without paying for decoding audio."""

from __future__ import annotations

import json
from pathlib import Path

from dropscribe.config import files

ENGLISH = {"en", "english"}
MULTILINGUAL_VOCABULARY = 51865  # CTranslate2's rule: a smaller vocabulary is English only
VOCABULARY_BYTES = 16 << 20  # Whisper's is about 1 MB; a bigger one is no Whisper model's


def english(language: str | None) -> bool:
    """Whether ``language`` (a code, a name, a tag such as en-GB) is English; unknown is."""
    if not language:
        return True
    return language.lower().replace("_", "-").split("-")[0] in ENGLISH


def multilingual(folder: Path) -> bool | None:
    """Whether the model in ``folder`` knows more than English, by the size of its
    vocabulary (what CTranslate2 decides it by) without loading it; None when the folder
    says nothing readable."""
    for name in ("vocabulary.json", "vocabulary.txt"):
        try:
            text = files.read(folder / name, VOCABULARY_BYTES).decode("utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        try:
            size = len(json.loads(text)) if name.endswith(".json") else len(text.splitlines())
        except ValueError:
            return None
        return size >= MULTILINGUAL_VOCABULARY
    return None


def english_only(name: str) -> bool:
    """Whether model ``name`` knows English only: by its files when it is a folder (the
    size of its vocabulary, read without loading it), else by its name (``*.en``)."""
    folder = Path(name).expanduser()
    if folder.is_dir() and (many := multilingual(folder)) is not None:
        return not many
    return name.rstrip("/").endswith(".en")
