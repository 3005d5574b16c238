"""A recording's chosen audio tracks (``audio_track:``), each its own job.

Each chosen track is transcribed as its own work: its key is the content and the
settings with that track (``audio_track: N`` shapes it, track 0 keyed as any file's
first stream), with its own attempts, stored transcript and sidecars, named
``name.<lang>.<ext>`` (``name.track<N>.<ext>`` without a language, or when two chosen
tracks share one) when more than one is chosen. A track other than the first is sent
alone: decoded (that stream only) into a FLAC file (0600, in a folder of its own under
``state_dir/work``, both 0700 whatever the umask) that every later step reads as the
recording, and made only when its transcript is not stored. The file is done once
every chosen track is; the first track that fails ends the file's job as it would end
any file's (its stored tracks are reused on the next try).
Where the folder detects languages, each track's is heard in that track's own audio
(``jobs/spoken.py``), and its rules by language chosen by it: a track heard in a
language the folder does not take makes the file wait, as a file would. A chosen track
that no codec here reads (a Matroska's unknown codec id beside a good Opus track) is
skipped with ``audio.track_skipped``, the others transcribed; a file of no such track
fails with the reason.
"""

from __future__ import annotations

import contextlib
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe.audio import probe, transcode
from dropscribe.errors import PermanentError, TranscriptionError
from dropscribe.ingest import source
from dropscribe.jobs import chunked, spoken, verdicts
from dropscribe.jobs.job import Job, Outcome
from dropscribe.vocab import glossary, languages
from dropscribe.vocab import tracks as choosing
from dropscribe.vocab.states import FileState, JobKey

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from dropscribe.audio.probe import Track
    from dropscribe.ledger.interface import JobLedger
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")


def chosen(settings: FolderSettings) -> bool:
    """Whether the folder chooses tracks (anything but the file's first audio stream)."""
    return not choosing.default(settings.audio_track)


def choose(setting: object, found: list[Track]) -> list[Track]:
    """The tracks ``setting`` takes of ``found``, in the file's order. A single index or
    tag must be there; of a list, those that are there (at least one). PermanentError,
    naming the file's tracks, when none is."""
    if setting == choosing.ALL:
        if len(found) > choosing.MOST:  # attack14: each would be a job (an upload) of its own
            raise PermanentError(
                f"the file has {len(found)} audio streams; audio_track: all takes at most"
                f" {choosing.MOST} (list the tracks wanted instead)"
            )
        return list(found)
    wanted = choosing.choices(setting)  # type: ignore[arg-type]
    taken = {
        track.index
        for track in found
        for choice in wanted
        if (track.index == choice if isinstance(choice, int) else _speaks(track, choice))
    }
    if not taken:
        asked = ", ".join(str(c) for c in wanted)
        has = ", ".join(str(t) for t in found)
        raise PermanentError(f"no audio track matches audio_track: {asked}; the file has {has}")
    return [track for track in found if track.index in taken]


UNREADABLE = "no codec here reads it (an unknown format tag or codec id)"


def readable(taken: list[Track]) -> list[Track]:
    """The tracks of ``taken`` that a codec here reads; PermanentError naming them when
    none does."""
    kept = [track for track in taken if track.readable]
    if not kept:
        which = ", ".join(str(track) for track in taken)
        raise PermanentError(
            f"no codec here reads its audio (track {which}: an unknown format tag or codec"
            " id): convert it with the program that made it, to WAV, FLAC or Opus"
        )
    return kept


def _speaks(track: Track, tag: str) -> bool:
    code = languages.normal(track.language)
    return code is not None and code == languages.normal(tag)


def suffixes(taken: list[Track]) -> dict[int, str | None]:
    """Each taken track's part of the sidecars' names: none for a single track, else its
    language (two letters where ISO 639-1 has them), or ``track<N>``."""
    if len(taken) < 2:
        return {track.index: None for track in taken}
    codes = [languages.normal(track.language) for track in taken]
    return {
        track.index: code if code is not None and codes.count(code) == 1 else f"track{track.index}"
        for track, code in zip(taken, codes, strict=True)
    }


def settings_of(settings: FolderSettings, track: int, suffix: str | None) -> FolderSettings:
    """The settings of one track's job: that track, and its sidecars' names."""
    update: dict[str, object] = {"audio_track": track}
    if suffix is not None:
        head, _, tail = settings.name_template.rpartition("{ext}")
        update["name_template"] = f"{head}{suffix}.{{ext}}{tail}"
    return settings.model_copy(update=update)


def described(path: Path, settings: FolderSettings) -> list[str]:
    """explain's lines: the file's audio tracks and which are taken (none for a file
    with one track under the default)."""
    try:
        found = probe.tracks(path)
    except (PermanentError, OSError) as exc:
        return [f"  audio tracks: cannot be read ({exc})"] if chosen(settings) else []
    if len(found) < 2 and not chosen(settings):
        return []
    lines = ["  audio tracks: " + ", ".join(_shown(track) for track in found)]
    try:
        asked = choose(settings.audio_track, found) if chosen(settings) else found[:1]
        taken = readable(asked)
    except PermanentError as exc:
        return [*lines, f"    taken: none ({exc.message})"]
    names = suffixes(taken)
    lines.append(
        "    taken: "
        + ", ".join(
            f"{track}" + (f" as {path.stem}.{names[track.index]}.*" if names[track.index] else "")
            for track in taken
        )
    )
    if skipped := [track for track in asked if not track.readable]:
        which = ", ".join(str(track) for track in skipped)
        lines.append(f"    skipped: {which}: {UNREADABLE}")
    return lines


def _shown(track: Track) -> str:
    """``0 (eng)``; ``1 (deu, unknown codec)`` for one no codec here reads."""
    if track.readable:
        return str(track)
    return f"{track.index} ({track.language or 'no language'}, unknown codec)"


def each(
    job: Job,
    sidecars: Callable[[Job], list[Path] | Outcome],
    ledger: JobLedger,
    work: Path,
    uploader: Uploader,
) -> Outcome:
    """Every chosen track of ``job``'s file as its own job (its language heard in that
    track, ``uploader`` telling what the endpoint detects itself; ``sidecars``: one
    track's transcript and sidecars under its key's lock and claim); then the file done,
    moved as ``after:`` says and its hook run, once."""
    held, key = job.known()
    try:
        found = probe.tracks(held.content)
        asked = choose(job.settings.audio_track, found)
        taken = readable(asked)
    except PermanentError as exc:
        return verdicts.fail(ledger, job, exc)
    names = suffixes(taken)
    skipped = [track for track in asked if not track.readable]
    log.info(
        "audio.tracks",
        tracks=[{"index": t.index, "language": t.language, "codec": t.codec} for t in found],
        taken=[t.index for t in taken],
        skipped=[t.index for t in skipped],
    )
    for track in skipped:
        log.warning(
            "audio.track_skipped",
            track=track.index,
            language=track.language,
            codec=track.codec,
            reason=UNREADABLE,
            action="the other tracks are transcribed; to have this one too, convert the file"
            " with the program that made it (to Matroska with Opus or FLAC tracks)",
        )
    written: list[Path] = []
    for track in taken:
        settings = settings_of(job.settings, track.index, names[track.index])
        one = Job(job.file, settings, held, JobKey(key.digest, settings.shaping_hash()))
        structlog.contextvars.bind_contextvars(track=track.index)
        if isinstance(heard := _heard(one, job, track, uploader, ledger), Outcome):
            structlog.contextvars.unbind_contextvars("track")
            return heard
        one.settings = settings_of(heard, track.index, names[track.index])
        try:
            with _alone(one, track, ledger, work) as outcome:
                result = outcome if isinstance(outcome, Outcome) else sidecars(one)
        except OSError as exc:  # scratch audio under state_dir (a full disk): not the file
            error = f"cannot write scratch audio: {exc.strerror or exc}"
            return verdicts.later(ledger, one, error, "audio.scratch_failed", will_retry=True)
        finally:
            structlog.contextvars.unbind_contextvars("track")
        if isinstance(result, Outcome):
            return result
        written += result
    if changed := held.changed():
        log.warning("file.changed", reason=changed, will_retry=True)
        return Outcome.SKIPPED
    ledger.record_file(job.path, job.inbox.name, held.identity, key.digest, key, FileState.DONE)
    moved = verdicts.after(ledger, job)
    done = glossary.recorded(job.settings.formats, job.settings.glossary)
    ledger.file_done(job.path, done, written, verdicts.owed(job, "done", written, moved=moved))
    log.info(
        "file.done",
        outputs=[str(p) for p in written],
        moved_to=str(moved) if moved else None,
        tracks=[t.index for t in taken],
    )
    verdicts.hook(ledger, job, "done", written, moved=moved)
    return Outcome.DONE


def _heard(
    one: Job, job: Job, track: Track, uploader: Uploader, ledger: JobLedger
) -> FolderSettings | Outcome:
    """The settings of track ``one`` once its language is heard in that track (the
    file's settings, ``job``'s, chosen again by it), or how the file waits."""
    try:
        return spoken.settled(
            Job(job.file, job.settings, one.held, one.key), uploader, ledger, track.index
        )
    except spoken.Unexpected as exc:
        return verdicts.later(ledger, one, str(exc), "file.waiting", quarantined=False)
    except TranscriptionError as exc:  # the language_model cannot be used: the config's
        error = f"cannot detect the language: {exc.message}"
        return verdicts.later(ledger, one, error, will_retry=True, quarantined=False)


@dataclass(frozen=True)
class Alone(source.Opened):
    """The recording as opened (its name, identity, changes, quarantine and ``after:``
    are the file's), whose audio is read from ``track``: one track alone."""

    track: Path = Path()
    track_bytes: int = 0
    index: int = 0  # which of the file's audio streams ``track`` holds

    @property
    def content(self) -> Path:
        return self.track

    @property
    def recording(self) -> tuple[Path, int]:
        return super().recording[0], self.index

    @property
    def sent(self) -> Path:
        return self.path.with_name(self.track.name)

    @property
    def size(self) -> int:
        return self.track_bytes


@contextlib.contextmanager
def _alone(job: Job, track: Track, ledger: JobLedger, work: Path) -> Iterator[Outcome | None]:
    """While the block runs, ``job`` reads its track alone: the file as it is for the
    first track, or one whose transcript is stored; else that track decoded into a FLAC
    file of its own under ``work``. An Outcome when that cannot be done."""
    held, key = job.known()
    row = ledger.job(key)
    if track.index == 0 or (row is not None and row.result is not None):
        yield None
        return
    work.parent.mkdir(parents=True, exist_ok=True)
    chunked.private_folder(work)  # leftovers21: 0700 from the start, as a chunk's scratch
    with tempfile.TemporaryDirectory(dir=work, prefix="track-") as scratch:
        flac = Path(scratch) / f"{job.path.stem or 'track'}.track{track.index}.flac"
        try:
            size = transcode.extract(held.content, track.index, flac)
        except PermanentError as exc:
            yield verdicts.fail(ledger, job, exc)
            return
        log.info("audio.track_extracted", track=track.index, bytes=size)
        job.held = Alone(held.path, held.fd, held.stat, flac, size, track.index)
        try:
            yield None
        finally:
            job.held = held
