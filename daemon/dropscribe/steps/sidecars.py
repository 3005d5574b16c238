"""A step's result -> its sidecars, through the package's atomic writer with the same
permissions and marks as the transcript's: ``name.summary.md`` (and the summary's sections
in the ``md`` note), ``name.<lang>.txt/.srt/.vtt`` whose cues keep the source's times."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from dropscribe.config import rules
from dropscribe.outputs import marks, sidecar
from dropscribe.outputs.cues import Cue
from dropscribe.steps import prompts
from dropscribe.vocab.settings import Format
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.outputs.render import Page
    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.settings import FolderSettings

TRANSLATED = (Format.TXT, Format.SRT, Format.VTT)


def name(settings: FolderSettings, source: Path, ext: str) -> str:
    """A step sidecar's name: the folder's template with ``ext`` (``summary.md``, ``de.srt``)."""
    return settings.name_template.format(
        stem=source.stem,
        name=source.name,
        ext=ext,
        language=settings.language or "auto",
        model=settings.model.replace("/", "_"),
        task=settings.task.value,
        source_ext=source.suffix.lstrip("."),
    )


def files_of(
    step: str,
    result: dict[str, Any],
    page: Page,
    settings: FolderSettings,
    source: Path,
    outputs: list[Path],
    folder: Path,
) -> dict[Path, bytes]:
    """The sidecars of one step's result, by path."""
    if step == "summary":
        text = result["markdown"].strip() + "\n"
        files = {folder / name(settings, source, "summary.md"): text.encode()}
        note = next((p for p in outputs if p.name.endswith(".md")), None)
        if Format.MD in settings.formats and note is not None:
            files[note] = with_summary(page.render(Format.MD).decode(), result["markdown"]).encode()
        return files
    language = result["language"]
    page.__dict__["subtitles"] = [
        Cue(start, end, tuple(_wrapped(text, page)), speaker, turn)
        for start, end, text, speaker, turn in result["cues"]
    ]
    wanted = [f for f in settings.formats if f in TRANSLATED] or [Format.TXT]
    made: dict[Path, bytes] = {}
    for fmt in wanted:
        data = _txt(page) if fmt is Format.TXT else page.render(fmt)
        made[folder / name(settings, source, f"{language}.{fmt.extension}")] = data
    return made


def with_summary(note: str, summary: str) -> str:
    """The md note with the summary's sections under its front matter."""
    if not note.startswith("---\n") or (end := note.find("\n---\n", 4)) < 0:
        return note
    head, body = note[: end + 5], note[end + 5 :]
    return f"{head}\n{prompts.sections(summary)}\n\n---\n{body}"


def write(
    files: dict[Path, bytes],
    inbox: Inbox,
    settings: FolderSettings,
    source: Path,
    key: JobKey,
    outputs: list[Path],
) -> None:
    """Write them atomically, with the recording's permission bits and the job's mark."""
    folder = rules.sidecar_dir(inbox, settings, source)
    mode = None
    for candidate in (source, *outputs):
        with contextlib.suppress(OSError):
            mode = candidate.stat().st_mode
            break
    ours = JobKey(key.digest, settings.shaping_hash())
    mark: JobKey | None = ours
    staged = dict(files)
    if not marks.supported(folder):
        staged.update({marks.fallback(t): marks.of(ours, d) for t, d in files.items()})
        mark = None
    sidecar.write_all(staged, within=settings.output_dir or inbox.path, mode=mode, mark=mark)


def _wrapped(text: str, page: Page) -> list[str]:
    """A translated cue's text in lines of about the folder's length (never more lines
    than the text has words; a long translation keeps every word)."""
    rules_ = page.rules
    lines: list[str] = []
    line = ""
    words = text.split()
    for word in words:
        if (
            line
            and len(line) + 1 + len(word) > rules_.line_length
            and len(lines) < rules_.lines - 1
        ):
            lines.append(line)
            line = ""
        line = f"{line} {word}" if line else word
    return [*lines, line] if line else lines or [""]


def _txt(page: Page) -> bytes:
    """The translated cues as paragraphs, a new one at each pause of paragraph_seconds."""
    paragraphs: list[list[str]] = []
    last_end = None
    for cue in page.subtitles:
        if last_end is None or cue.start - last_end >= page.rules.paragraph_seconds:
            paragraphs.append([])
        paragraphs[-1].append(cue.text)
        last_end = cue.end
    return ("\n\n".join(" ".join(p) for p in paragraphs) + "\n").encode()
