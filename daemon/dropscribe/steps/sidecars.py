"""A step's result -> its sidecars, through the package's atomic writer with the same
permissions and marks as the transcript's: ``name.summary.md`` (and the summary's sections
in the ``md`` note), ``name.<lang>.txt/.srt/.vtt`` whose cues keep the source's times.
Their names are claimed in the ledger as the transcript's are (``outputs/publish.py``): a
name another source owns, or a file we did not write (a user's own ``name.summary.md``),
is left alone and ``{name}.{ext}``, then numbers, are tried."""

from __future__ import annotations

import contextlib
import itertools
from typing import TYPE_CHECKING, Any, NamedTuple

import structlog

from dropscribe import names
from dropscribe.config import rules
from dropscribe.errors import SidecarError
from dropscribe.outputs import disposition, glossary, marks, sidecar
from dropscribe.outputs.cues import Cue
from dropscribe.steps import prompts
from dropscribe.vocab import glossary as terms
from dropscribe.vocab.settings import Format
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from pathlib import Path

    from dropscribe.ledger.interface import Claim, Sidecars
    from dropscribe.outputs.render import Page
    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

TRANSLATED = (Format.TXT, Format.SRT, Format.VTT)
ROUNDS = 3  # a name claimed by another source at that very moment: look again


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


class Made(NamedTuple):
    """One step sidecar: the name the template gives it, its step extension (``summary.md``,
    ``de.srt``; None for the transcript's own md note) and its bytes."""

    path: Path
    ext: str | None
    data: bytes


def files_of(
    step: str,
    result: dict[str, Any],
    page: Page,
    settings: FolderSettings,
    source: Path,
    outputs: list[Path],
    folder: Path,
) -> list[Made]:
    """The sidecars of one step's result."""
    fixed = glossary.compiled(settings.glossary).text if settings.glossary else str
    if step == "summary":
        text = fixed(result["markdown"].strip()) + "\n"
        ext = "summary.md"
        files = [Made(folder / name(settings, source, ext), ext, text.encode())]
        note = next((p for p in outputs if p.name.endswith(".md")), None)
        if Format.MD in settings.formats and note is not None:
            body = with_summary(page.render(Format.MD).decode(), fixed(result["markdown"]))
            files.append(Made(note, None, body.encode()))
        return files
    language = result["language"]
    page.__dict__["subtitles"] = [
        Cue(start, end, tuple(_wrapped(fixed(text), page)), speaker, turn)
        for start, end, text, speaker, turn in result["cues"]
    ]
    wanted = [f for f in settings.formats if f in TRANSLATED] or [Format.TXT]
    made: list[Made] = []
    for fmt in wanted:
        data = _txt(page) if fmt is Format.TXT else page.render(fmt)
        ext = f"{language}.{fmt.extension}"
        made.append(Made(folder / name(settings, source, ext), ext, data))
    return made


def published(
    ledger: Sidecars,
    made: list[Made],
    inbox: Inbox,
    settings: FolderSettings,
    source: Path,
    key: JobKey,
    outputs: list[Path],
    claim: Claim | None,
) -> list[Path]:
    """One step's sidecars claimed and written (``claimed``, ``write``); with a shared
    ledger's ``claim`` of the step (stepsfence), no name is claimed and none is given
    unless it is still this host's (Fenced: nothing written, no temp file left)."""
    files = claimed(ledger, made, settings, source, key, claim)
    confirm = (lambda: ledger.confirm(claim)) if claim is not None and claim.token else None
    write(files, inbox, settings, source, key, outputs, confirm)
    return list(files)


def claimed(
    ledger: Sidecars,
    made: list[Made],
    settings: FolderSettings,
    source: Path,
    key: JobKey,
    claim: Claim | None = None,
) -> dict[Path, bytes]:
    """The sidecars under the names claimed for them in the ledger, as the transcript's
    are: the template's name unless another source owns it or a file we did not write is
    in the way (a user's own notes), then ``{name}.{ext}``, then numbers; the md note is
    the transcript's, this source's already. Raises SidecarError when no name is left,
    Fenced when ``claim`` ran out (checked as the names are claimed)."""
    owner = None if settings.after == "keep" else f"{names.text(source)}#{key.digest}"
    me = owner or names.text(source)
    options = [_candidates(m.path, source, m.ext) for m in made]
    chosen: list[Path | None] = [None] * len(made)
    for _ in range(ROUNDS):  # another round only if a name was claimed meanwhile
        left = [i for i, target in enumerate(chosen) if target is None]
        picks = [_free(ledger, options[i], me) for i in left]
        for i, target in zip(left, ledger.finish(source, None, picks, owner, claim), strict=True):
            chosen[i] = target
        if None not in chosen or not any(picks):
            break
    out: dict[Path, bytes] = {}
    for one, target in zip(made, chosen, strict=True):
        if target is None:
            raise SidecarError(None, "no free sidecar name", str(one.path))
        if target != one.path:
            log.info(
                "sidecar.renamed",
                reason="name taken by another file",
                wanted=str(one.path),
                sidecar=str(target),
            )
        out[target] = one.data
    return out


def _candidates(first: Path, source: Path, ext: str | None) -> Iterator[Path]:
    """A step sidecar's names in the order tried: the template's (``first``), then
    ``{name}.{ext}``, then numbers; built only as far as needed."""
    yield first
    if ext is None:
        return
    others = itertools.chain(
        [f"{source.name}.{ext}"], (f"{source.name}.{n}.{ext}" for n in range(2, 10_000))
    )
    yield from (first.with_name(n) for n in others if n != first.name)


def _free(ledger: Sidecars, options: Iterator[Path], me: str) -> list[Path]:
    """The next of ``options`` that ``me`` may take: its own claim, or a name nobody
    claimed with nothing in the way; empty when none is left."""
    for target in options:
        owner = ledger.owner_of(target)
        if owner == me or (owner is None and not disposition.occupied(target)):
            return [target]
    return []


def shown_as(shaping: str, settings: FolderSettings) -> str:
    """What a step's sidecars show: its result (``shaping``) under the folder's glossary,
    applied as they are written (a new glossary writes them again, never re-runs them)."""
    glossed = terms.mark(settings.glossary)
    return shaping if glossed is None else f"{shaping}+{glossed.removeprefix(terms.MARK)}"


def note_lost(outputs: list[Path], settings: FolderSettings, markdown: str) -> bool:
    """Whether the transcript's md note is there without the summary's sections (it was
    written again since: a glossary or a format changed): the summary is then written
    again from its stored result."""
    note = next((p for p in outputs if p.name.endswith(".md")), None)
    if Format.MD not in settings.formats or note is None:
        return False
    fixed = glossary.compiled(settings.glossary).text if settings.glossary else str
    try:
        with note.open("rb") as fh:
            body = fh.read(marks.MAX_SIDECAR_BYTES).decode("utf-8", "replace")
    except OSError:
        return False
    return prompts.sections(fixed(markdown)) not in body


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
    before_naming: Callable[[], None] | None = None,
) -> None:
    """Write them atomically, with the recording's permission bits and the job's mark;
    ``before_naming`` may refuse (raise) once all are written and none is named yet."""
    folder = rules.sidecar_dir(inbox, settings, source)
    mode = None
    for candidate in (source, *outputs):
        with contextlib.suppress(OSError):
            mode = candidate.stat().st_mode
            break
    ours = JobKey(key.digest, settings.shaping_hash())
    if (glossed := terms.mark(settings.glossary)) is not None:  # as publish._marked
        ours = JobKey(key.digest, f"{ours.shaping}+{glossed.removeprefix(terms.MARK)}")
    mark: JobKey | None = ours
    staged = dict(files)
    if not marks.supported(folder):
        staged.update({marks.fallback(t): marks.of(ours, d) for t, d in files.items()})
        mark = None
    sidecar.write_all(
        staged,
        before_naming=before_naming,
        within=settings.output_dir or inbox.path,
        mode=mode,
        mark=mark,
    )


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
