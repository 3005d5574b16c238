"""``audio_track:``, the audio streams a folder's recordings are transcribed from: an
index among the file's audio streams (0, the default: the first), a language tag
(matched against each stream's language metadata), a list of those, or ``all``."""

from __future__ import annotations

from typing import Any

from dropscribe.vocab import languages

ALL = "all"
MOST = 32  # indexes and tags in one list; a file with more audio streams is no recording
LAST_INDEX = 63

Choice = int | str  # an audio stream's index, or a language tag as the config gave it


def checked(value: Any) -> Any:
    """``value`` as ``audio_track:`` takes it: ``all``, an index, a tag (lower case), or a
    tuple of indexes and tags (duplicates dropped); ValueError naming what is wrong."""
    if isinstance(value, str) and value.strip().lower() == ALL:
        return ALL
    if isinstance(value, (list, tuple)):
        if not value:
            raise ValueError("give at least one track, or all")
        if len(value) > MOST:
            raise ValueError(f"at most {MOST} tracks")
        items = tuple(dict.fromkeys(_one(item) for item in value))
        return items[0] if len(items) == 1 else items
    return _one(value)


def _one(item: Any) -> Choice:
    if isinstance(item, bool) or not isinstance(item, (int, str)):
        raise ValueError(  # noqa: TRY004 - pydantic reports ValueError, not TypeError
            "must be a track index (0 is the first audio stream), a language tag such as"
            " de or deu, a list of them, or all"
        )
    if isinstance(item, int):
        if not 0 <= item <= LAST_INDEX:
            raise ValueError(f"a track index is 0 (the first audio stream) to {LAST_INDEX}")
        return item
    tag = item.strip().lower()
    if tag.isdigit():
        return _one(int(tag))
    if not languages.known(tag):
        raise ValueError(
            f"{item!r} is not an ISO 639-1 or 639-2 language code (such as de, deu or ger)"
        )
    return tag


def choices(value: Choice | tuple[Choice, ...]) -> tuple[Choice, ...]:
    """The setting as a tuple (``all`` as itself)."""
    return value if isinstance(value, tuple) else (value,)


def default(value: object) -> bool:
    """Whether the setting is the default: the first audio stream, the file as it is."""
    return value in {0, (0,)}
