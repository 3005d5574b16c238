"""``dropscribe rehearse``: a new model tried on finished recordings before the switch.

A sample of an inbox's finished recordings is transcribed again with the new model into
``NAME.next.EXT`` sidecars beside the current ones (never touching them, never marking
anything in the ledger), and a table says, per file and in total, how far the new text
is from the current one (word error rate of one against the other), how long the audio
is, how many requests the server refused, and what an hour costs on each side.
``--apply`` then sets the inbox's ``model:`` in the config file (a backup beside it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import json
import os
import re
import stat
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import yaml

from dropscribe.audio import probe
from dropscribe.commands.console import EXIT_FAILED, EXIT_OK, fail, say
from dropscribe.config import files, rules
from dropscribe.errors import ConfigError, DropscribeError, TranscriptionError
from dropscribe.ingest import source
from dropscribe.ledger import opening
from dropscribe.loading import checked
from dropscribe.outputs import render, sidecar
from dropscribe.transcribe import models, prices, refusals
from dropscribe.transcribe.engines import make_client

if TYPE_CHECKING:
    from dropscribe.ledger.interface import Reports
    from dropscribe.transcript import Transcriber, Transcript
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.settings import FolderSettings

MOST_WORDS = 3_000  # words of each text compared (the distance is quadratic)
MOST_REFUSALS = 4  # refusals learned per file before it is given up


@dataclass(frozen=True)
class Tried:
    """One recording, transcribed again."""

    path: Path
    seconds: float
    difference: float | None  # word error rate of the new text against the current one
    refused: int
    error: str | None = None


def words(text: str) -> list[str]:
    return re.findall(r"\w+(?:'\w+)?", text.lower())[:MOST_WORDS]


def difference(current: str, new: str) -> float:
    """Word error rate of ``new`` against ``current``: (substitutions + insertions +
    deletions) / words of ``current``; 0 for two empty texts."""
    ref, hyp = words(current), words(new)
    if not ref:
        return 0.0 if not hyp else 1.0
    row = list(range(len(hyp) + 1))
    for i, a in enumerate(ref, 1):
        before, row[0] = row[0], i
        for j, b in enumerate(hyp, 1):
            before, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, before + (a != b))
    return row[-1] / len(ref)


Identity = tuple[int, int, int]  # size, mtime, inode: the version of a file


def finished(
    cfg: Config, inbox: Inbox, ledger: Reports, sample: int
) -> list[tuple[Path, str, Identity]]:
    """The inbox's most recent finished recordings (at most ``sample``), the text the
    ledger holds for each, and the version of the file it was made from."""
    found: list[tuple[int, Path, str, Identity]] = []
    excluded = rules.excluded_dirs(cfg)
    for folder, dirs, names in os.walk(inbox.path):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in names:
            path = Path(folder) / name
            if rules.ignore_reason(inbox, path, excluded) is not None:
                continue
            row = ledger.file(path)
            if row is None or row.state != "done":
                continue
            job = ledger.job(row.key)
            if job is None or not job.result or not isinstance(job.result.get("text"), str):
                continue
            version = (row.size, row.mtime_ns, row.inode)
            found.append((row.mtime_ns, path, job.result["text"], version))
    found.sort(key=lambda item: (-item[0], str(item[1])))
    return [(path, text, version) for _, path, text, version in found[:sample]]


def _transcribe(
    client: Transcriber, held: source.Opened, settings: FolderSettings
) -> tuple[Transcript, int]:
    """The new transcript of the open file, learning the server's refusals as the
    daemon does. leftovers22: the probe's length goes with the request, so that an
    answer is held to what any answer for that much audio could be, as the daemon's
    are (``transcript.answer_bytes``), not read up to ``max_answer_bytes``."""
    caps = models.of(client.endpoint, settings.model)
    seconds = probe.examine(held.content).duration
    refused = 0
    while True:
        ask = dataclasses.replace(models.asked(caps, settings), seconds=seconds)
        try:
            return client.transcribe(held.content, settings, ask, name=held.path.name), refused
        except TranscriptionError as exc:
            item = refusals.refusal(exc.status, exc.param, exc.message, ask)
            if item is None or refused >= MOST_REFUSALS:
                raise
            refused += 1
            caps = models.learned(caps, [item])


def _write_next(
    inbox: Inbox, held: source.Opened, settings: FolderSettings, transcript: Transcript
) -> None:
    """``NAME.next.EXT`` for each of the folder's formats, with the recording's mode."""
    path = held.path
    template = settings.name_template.replace("{ext}", "next.{ext}")
    shown = settings.model_copy(update={"name_template": template})
    page = render.Page(
        transcript,
        task=settings.task.value,
        rules=settings.subtitles,
        source=path.name,
        model=settings.model,
    )
    folder = rules.sidecar_dir(inbox, settings, path)
    files = {
        folder / rules.sidecar_name(shown, path, fmt): page.render(fmt) for fmt in settings.formats
    }
    sidecar.write_all(files, within=settings.output_dir or inbox.path, mode=held.stat.st_mode)


def _again(
    client: Transcriber, inbox: Inbox, path: Path, version: Identity, settings: FolderSettings
) -> tuple[Transcript, int]:
    """The very file the ledger finished, opened once as the daemon opens it (a link, a
    FIFO or another file put in its place is refused, never read), transcribed again
    and written as ``.next`` sidecars."""
    with source.opened(path, follow_symlinks=inbox.follow_symlinks) as held:
        if held.identity != version:
            raise source.Unusable("changed since it was transcribed; left alone")
        transcript, refused = _transcribe(client, held, settings)
        _write_next(inbox, held, settings, transcript)
    return transcript, refused


def rehearse(
    cfg: Config,
    inbox_path: Path,
    model: str,
    endpoint_name: str | None,
    sample: int,
    *,
    apply: bool = False,
) -> int:
    inbox = next((i for i in cfg.inboxes if i.path == inbox_path.absolute()), None)
    if inbox is None:
        return fail(f"{inbox_path}: not an inbox of {cfg.source}")
    current = rules.effective(inbox, inbox.path / "x.wav")
    name = endpoint_name or current.endpoint
    if name not in cfg.endpoints:
        return fail(f"endpoint {name!r} is not in {cfg.source}")
    try:
        ledger = opening.existing(cfg)
    except (OSError, DropscribeError) as exc:
        return fail(f"cannot read the ledger: {exc}")
    if ledger is None:
        return fail("no ledger yet: nothing is finished to rehearse on")
    try:
        chosen = finished(cfg, inbox, ledger, sample)
    finally:
        ledger.close()
    if not chosen:
        say(f"{inbox.path}: no finished recording to rehearse on")
        return EXIT_FAILED
    client = make_client(cfg.endpoints[name])
    tried = []
    try:
        for path, text, version in chosen:
            settings = rules.effective(inbox, path).model_copy(
                update={"model": model, "endpoint": name}
            )
            try:
                transcript, refused = _again(client, inbox, path, version, settings)
            except (TranscriptionError, OSError, source.Unusable) as exc:
                why = getattr(exc, "message", None) or str(exc)
                tried.append(Tried(path, 0.0, None, 0, why))
                continue
            tried.append(
                Tried(path, transcript.duration or 0.0, difference(text, transcript.text), refused)
            )
    finally:
        client.close()
    _table(tried, inbox, cfg, current, (name, model))
    if apply and all(t.error is None for t in tried):
        return _apply(cfg, inbox, model)
    return EXIT_FAILED if any(t.error for t in tried) else EXIT_OK


def _table(
    tried: list[Tried], inbox: Inbox, cfg: Config, current: FolderSettings, new: tuple[str, str]
) -> None:
    say(f"{'file':<40} {'seconds':>8} {'words differ':>12} {'refused':>8}")
    for t in tried:
        rel = os.path.relpath(t.path, inbox.path)
        if t.error is not None:
            say(f"{rel[:40]:<40} failed: {t.error}")
            continue
        say(f"{rel[:40]:<40} {t.seconds:>8.1f} {t.difference or 0:>11.1%} {t.refused:>8}")
    done = [t for t in tried if t.error is None]
    seconds = sum(t.seconds for t in done)
    weighted = sum((t.difference or 0) * t.seconds for t in done) / seconds if seconds else 0.0
    say(f"{'total':<40} {seconds:>8.1f} {weighted:>11.1%} {sum(t.refused for t in done):>8}")
    for label, (endpoint, model) in (("now", (current.endpoint, current.model)), ("next", new)):
        price = prices.per_hour(cfg.endpoints[endpoint], model)
        cost = "unknown (set price_per_hour:)" if price is None else f"${price:.3f} an audio hour"
        say(f"{label}: {model} on {endpoint}: {cost}")


Span = tuple[int, int, int]  # a value's line, and its first and last columns + 1


def _inbox_lines(text: str, base: Path, inbox: Inbox) -> tuple[int, Span | None, int] | None:
    """Where the inbox's entry is in the config's text: the line of its ``path:`` key,
    where its ``model:`` value is (None: it has none) and the key's column. ValueError
    when the value is not on its key's line, whole (leftovers22: it was cut wrong)."""
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return None
    entries = next((v for k, v in root.value if k.value == "inboxes"), None)
    if not isinstance(entries, yaml.SequenceNode):
        return None
    for entry in entries.value:
        if not isinstance(entry, yaml.MappingNode):
            continue
        keys = {k.value: (k, v) for k, v in entry.value if isinstance(k, yaml.ScalarNode)}
        if "path" not in keys or not isinstance(keys["path"][1], yaml.ScalarNode):
            continue
        where = None
        with contextlib.suppress(Exception):  # a path the loader refused is not this inbox
            where = files.resolved(str(keys["path"][1].value), base)
        if where != inbox.path:
            continue
        path_key = keys["path"][0]
        model = None
        if "model" in keys:
            key, value = keys["model"]
            start, end = value.start_mark, value.end_mark
            if not key.start_mark.line == start.line == end.line:
                raise ValueError("model: is not on one line")
            model = (start.line, start.column, end.column)
        return path_key.start_mark.line, model, path_key.start_mark.column
    return None


def _apply(cfg: Config, inbox: Inbox, model: str) -> int:
    """Set the inbox's ``model:`` in the config file, keeping every other line (and
    comment) as it is; a backup beside it; undone if the new file does not load.

    The file is replaced whole (a reader, a SIGHUP or a full disk never meets half of
    it), where it really is (a config reached through a link stays a link), with its
    mode and owner; the backup is as private as the config from its first byte.
    leftovers22: every way it can fail is a line saying what the file holds now, and
    exit 2; an undo that fails too (the disk full, the folder made read-only since)
    names the backup to copy back by hand."""
    source = cfg.source
    real = Path(os.path.realpath(source))
    try:
        was = real.stat()
        original = real.read_bytes()
    except OSError as exc:
        return fail(f"{source}: cannot read it ({exc.strerror}); set model: {model} by hand")
    edited = _edited(original, source.parent.resolve(), inbox, model)
    if edited is None:
        return fail(
            f"cannot find the inbox {inbox.path} in {source} with its model: (if any) on one"
            f" line; set model: {model} by hand"
        )
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%SZ")
    backup = real.with_name(f"{real.name}.{stamp}.bak")
    try:
        _write_new(backup, original, was)
    except OSError as exc:
        return fail(f"{source}: left as it was: cannot write {backup}: {exc.strerror}")
    try:
        _replace(real, edited, was)
    except OSError as exc:
        return fail(f"{source}: left as it was: cannot write it anew: {exc.strerror}")
    try:
        checked.load(source, keys=False)
    except ConfigError as exc:
        why = f"with model: {model} it would not load ({exc})"
        try:
            _replace(real, original, was)
        except OSError as undo:
            return fail(
                f"{source}: {why}, and it could not be put back ({undo.strerror}): it holds"
                f" model: {model} now; copy {backup} over it before the daemon reloads"
            )
        return fail(f"{source}: left as it was: {why}")
    say(f"{source}: model: {model} for {inbox.path} (the old file is {backup}); reload the daemon")
    return EXIT_OK


def _edited(original: bytes, base: Path, inbox: Inbox, model: str) -> bytes | None:
    """The config's bytes with the inbox's ``model:`` set; None where the entry cannot be
    found or edited line by line (the file changed since it was loaded, or its
    ``model:`` value spans lines)."""
    try:
        text = original.decode("utf-8")
        found = _inbox_lines(text, base, inbox)
    except (UnicodeDecodeError, yaml.YAMLError, ValueError):
        return None
    if found is None:
        return None
    path_line, span, column = found
    lines = text.splitlines(keepends=True)
    value = _scalar(model)
    if span is not None:  # the value alone replaced: the key, a comment after it, kept
        line, start, end = span
        lines[line] = lines[line][:start] + value + lines[line][end:]
    else:
        lines.insert(path_line + 1, f"{' ' * column}model: {value}\n")
    return "".join(lines).encode("utf-8")


def _scalar(model: str) -> str:
    """attack21: ``model`` as YAML that reads back as this very string: as it is where it
    does, else quoted (JSON's string is YAML's double-quoted one). Written as it was, a
    `` #`` cut the name short and a newline added keys of its own (a ``hook:``)."""
    with contextlib.suppress(yaml.YAMLError):
        if yaml.safe_load(f"model: {model}") == {"model": model}:
            return model
    return json.dumps(model)


def _write_new(path: Path, data: bytes, like: os.stat_result) -> None:
    """A new file (never one already there, never through a link) holding ``data``,
    with ``like``'s mode and, where this user may give it, its owner."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    fd = os.open(path, flags, 0o600)
    try:
        _fill(fd, data, like)
    except BaseException:
        os.close(fd)
        with contextlib.suppress(OSError):  # the write's error is the one to tell
            path.unlink(missing_ok=True)
        raise
    os.close(fd)


def _replace(path: Path, data: bytes, like: os.stat_result) -> None:
    """``path`` holds ``data``, whole or not at all: written beside it, renamed over."""
    fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        _fill(fd, data, like)
        Path(name).replace(path)
    except BaseException:
        with contextlib.suppress(OSError):  # the write's error is the one to tell
            Path(name).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
    with contextlib.suppress(OSError):  # replaced: a folder it cannot sync changes nothing
        folder = os.open(path.parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)


def _fill(fd: int, data: bytes, like: os.stat_result) -> None:
    with contextlib.suppress(PermissionError):  # only root may give a file away
        os.fchown(fd, like.st_uid, like.st_gid)
    os.fchmod(fd, stat.S_IMODE(like.st_mode))
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
    os.fsync(fd)
