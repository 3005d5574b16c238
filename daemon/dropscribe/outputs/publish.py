"""A transcript -> its sidecars: names claimed in the ledger, rendered, written atomically."""

from __future__ import annotations

import contextlib
import itertools
import os
from datetime import datetime
from typing import TYPE_CHECKING

import structlog

from dropscribe import beneath, names
from dropscribe.config import rules
from dropscribe.errors import SidecarError
from dropscribe.outputs import disposition, glossary, marks, render, sidecar
from dropscribe.vocab import glossary as terms
from dropscribe.vocab.settings import Format
from dropscribe.vocab.states import FileState, JobKey

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    from dropscribe.ledger.interface import Claim, Sidecars
    from dropscribe.transcript import Transcript
    from dropscribe.vocab.config import Inbox
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

CLAIM_ROUNDS = 3  # a name lost to another source at that very moment: look again


def write(  # noqa: PLR0913 - the job's parts; the recording's mode by keyword
    ledger: Sidecars,
    inbox: Inbox,
    source: Path,
    settings: FolderSettings,
    transcript: Transcript,
    fresh: JobKey | None,
    digest: str,
    claim: Claim | None = None,
    *,
    mode: int | None = None,
) -> list[Path]:
    """Store a fresh transcript under its job key, claim the sidecar paths, write them
    (with the recording's permission bits, ``mode``, and the job's mark).

    The template's name is used unless another source owns it or a file we did not
    write is in the way (a user's own notes): then ``{name}.{ext}``, then numbers.
    Where ``after:`` moves or deletes recordings, a source is its name *and* content:
    a recorder that names every file ``REC001.WAV`` gets one set of sidecars per
    recording, since each earlier set is the only copy left of its transcript.

    With a shared ledger's ``claim``, nothing is stored or named unless it is still
    this daemon's (the ledger checks it as it commits), and no sidecar gets its final
    name unless it still is just before (``Ledger.confirm``); else Fenced.
    """
    folder = rules.sidecar_dir(inbox, settings, source)
    wanted = [folder / rules.sidecar_name(settings, source, fmt) for fmt in settings.formats]
    done = (fresh, transcript.to_json(), transcript.request_id) if fresh else None
    owner = None if settings.after == "keep" else f"{names.text(source)}#{digest}"
    me = owner or names.text(source)
    options = [
        _candidates(settings, source, fmt, first)
        for fmt, first in zip(settings.formats, wanted, strict=True)
    ]
    chosen: list[Path | None] = [None] * len(options)
    for _ in range(CLAIM_ROUNDS):  # another round only if a name was claimed meanwhile
        left = [i for i, target in enumerate(chosen) if target is None]
        picks = [_next_free(ledger, options[i], me) for i in left]
        claimed = ledger.finish(source, done, picks, owner, claim)
        for i, target in zip(left, claimed, strict=True):
            chosen[i] = target
        done = None  # stored by the first round
        if None not in chosen or not any(picks):
            break
    page = _page(glossary.applied(transcript, settings.glossary), settings, source)
    files: dict[Path, bytes] = {}
    for fmt, first, target in zip(settings.formats, wanted, chosen, strict=True):
        if target is None:
            raise SidecarError(None, "no free sidecar name", str(first))
        if target != first:
            log.info(
                "sidecar.renamed",
                reason="name taken by another file",
                wanted=str(first),
                sidecar=str(target),
            )
        files[target] = page.render(fmt)
    confirm = (lambda: ledger.confirm(claim)) if claim is not None and claim.token else None
    key = _marked(JobKey(digest, settings.shaping_hash()), settings)  # ours, without the ledger
    mark: JobKey | None = key
    staged = dict(files)
    if not marks.supported(folder):  # no attributes here: hidden mark files instead
        mark = None
        staged.update({marks.fallback(target): marks.of(key, d) for target, d in files.items()})
    sidecar.write_all(
        staged,
        before_naming=confirm,
        within=settings.output_dir or inbox.path,
        mode=mode,
        mark=mark,
    )
    for target, data in files.items():
        log.info("sidecar.written", sidecar=str(target), bytes=len(data))
    return list(files)


def _candidates(settings: FolderSettings, source: Path, fmt: Format, first: Path) -> Iterator[Path]:
    """A sidecar's names in the order they are tried: the template's (``first``), then
    ``{name}.{ext}``, then numbers; built only as far as needed."""
    yield first
    fallback = settings.model_copy(update={"name_template": "{name}.{ext}"})
    others = itertools.chain(
        [rules.sidecar_name(fallback, source, fmt)],
        (f"{source.name}.{n}.{fmt.extension}" for n in range(2, 10_000)),
    )
    yield from (first.parent / name for name in others if name != first.name)


def adopt(
    ledger: Sidecars,
    inbox: Inbox,
    source: Path,
    settings: FolderSettings,
    key: JobKey,
    identity: tuple[int, int, int],
    claim: Claim | None,
) -> list[Path]:
    """The sidecars found on disk that we wrote for this very job (each carries the mark
    of ``key`` over its present bytes), now recorded in the ledger as this source's;
    empty unless every format has one. A daemon whose ledger was lost or wiped so knows
    its own work, writes nothing and pays for nothing; a file without the mark, or with
    one for other content or settings, is a stranger's and is left alone.

    Each format's names are looked at in the order ``write`` tries them, as long as
    something is there: the one it took was the first free one, or this source's own.
    """
    if claim is None:
        return []
    owner = None if settings.after == "keep" else f"{names.text(source)}#{key.digest}"
    me = owner or names.text(source)
    folder = rules.sidecar_dir(inbox, settings, source)
    try:
        folder_fd = _open_beneath(folder, settings.output_dir or inbox.path)
    except (OSError, ValueError):  # no folder yet, or a link on the way: nothing of ours
        return []
    found: list[Path] = []
    try:
        for fmt in settings.formats:
            first = folder / rules.sidecar_name(settings, source, fmt)
            for target in _candidates(settings, source, fmt, first):
                if beneath.lstat_at(folder_fd, target.name) is None:
                    return []
                if ledger.owner_of(target) in {None, me} and marks.carries(
                    folder_fd, target.name, _marked(key, settings)
                ):
                    found.append(target)
                    break
            else:
                return []
    except OSError:  # a name this filesystem cannot even look up (too long): not ours
        return []
    finally:
        os.close(folder_fd)
    if None in ledger.finish(source, None, [[target] for target in found], owner, claim):
        return []
    ledger.record_file(source, inbox.name, identity, key.digest, key, FileState.DONE)
    return found


def _marked(key: JobKey, settings: FolderSettings) -> JobKey:
    """The mark a sidecar carries: its job's key, and the glossary it was written with
    (sidecars of another glossary are not this job's to adopt: they are written again)."""
    glossed = terms.mark(settings.glossary)
    return (
        key
        if glossed is None
        else JobKey(key.digest, f"{key.shaping}+{glossed.removeprefix(terms.MARK)}")
    )


def _open_beneath(folder: Path, within: Path) -> int:
    """``folder``, opened from ``within``'s descriptor without following a link."""
    if not folder.is_relative_to(within):
        return beneath.open_root(folder)
    root = beneath.open_root(within)
    try:
        return beneath.open_dir(root, folder.relative_to(within))
    finally:
        os.close(root)


def _page(transcript: Transcript, settings: FolderSettings, source: Path) -> render.Page:
    recorded = None
    if Format.MD in settings.formats:  # the recording's own time, for the front matter
        with contextlib.suppress(OSError):
            recorded = datetime.fromtimestamp(source.stat().st_mtime).astimezone()
    page = render.Page(
        transcript,
        task=settings.task.value,
        rules=settings.subtitles,
        source=names.text(source.name),
        model=settings.model,
        recorded=recorded,
    )
    if not page.shown.text.strip():
        log.info("transcript.empty", source=str(source), duration=transcript.duration)
    if page.dropped:
        log.info(
            "transcript.trimmed",
            source=str(source),
            dropped=[
                {"start": d.start, "end": d.end, "text": d.text, "why": d.why} for d in page.dropped
            ],
        )
    return page


def keep(
    ledger: Sidecars, source: Path, key: JobKey, transcript: Transcript, claim: Claim | None = None
) -> None:
    """Store a fresh transcript under its job key without writing any sidecar."""
    ledger.finish(source, (key, transcript.to_json(), transcript.request_id), [], claim=claim)


def _next_free(ledger: Sidecars, options: Iterator[Path], me: str) -> list[Path]:
    """The next of ``options`` that ``me`` may take as the ledger and the disk stand now:
    its own claim, or a name nobody claimed with nothing in the way (a user's own notes);
    empty when none is left. Looked at here, so the ledger's transaction holds only SQL."""
    for target in options:
        owner = ledger.owner_of(target)
        if owner == me or (owner is None and not disposition.occupied(target)):
            return [target]
    return []
