"""Commands -> exit codes. Nothing here prints a traceback for a user's mistake."""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import io
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

from dropscribe import __version__
from dropscribe.commands import searchargs, signals
from dropscribe.commands.console import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, EXIT_UNREACHABLE
from dropscribe.errors import (
    AlreadyRunningError,
    ConfigError,
    SetupError,
    StateLostError,
    WorkersFailedError,
)

# Each command imports its own modules when it runs (the PLC0415 lines below): --help
# needs none of them, status no engine, audio or HTTP library.
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from dropscribe.ops import progress
    from dropscribe.vocab.config import Config


EPILOG = """\
exit codes:
  0  success (run: stopped cleanly by SIGTERM or SIGINT; SIGHUP reloads the config;
     SIGUSR1 writes every thread's stack to stderr)
  1  once: at least one file failed; run: the daemon crashed
  2  the config or the set-up is wrong (every problem is printed, one per line)
  3  once: not done, an endpoint could not be reached (a dead URL, no network): nothing
     was quarantined, the files are where they were; run again once it is back
  explain: 0 the file would be (or was) transcribed; 1 it failed (quarantined), is
     ignored or is in no inbox
  retry: 1 some file could not be put back; search: 1 nothing found;
  rehearse: 1 a recording could not be tried; a reading command whose output's reader
     went away (| head): 1
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dropscribe",
        description="Watch folders, transcribe new audio files, write transcript sidecars.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"dropscribe {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, text in (
        ("run", "watch the inboxes and transcribe until stopped (SIGTERM/SIGINT)"),
        ("once", "transcribe what is in the inboxes now, then exit"),
        ("check-config", "validate the config file and report every problem"),
        ("status", "each endpoint's state, each inbox's counts, every file not done and why"),
        ("retry", "put quarantined recordings back into their inbox to be tried again"),
        ("explain", "which inbox and rules apply to a file, its settings and its ledger state"),
        ("ledger", "ledger migrate: copy the SQLite ledger into the shared one (ledger: url:)"),
        ("rehearse", "try a new model on an inbox's finished recordings (NAME.next.EXT)"),
        ("service", "install (root): set the systemd unit up for this config; or uninstall"),
        ("search", 'where in every transcript a thing was said: words, "phrases", -not, pre*'),
    ):
        cmd = sub.add_parser(
            name,
            help=text,
            description=text,
            epilog=EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        cmd.add_argument(
            "-c", "--config", required=True, metavar="CONFIG", help="path to the YAML config file"
        )
        if name in READERS:
            cmd.add_argument(
                "--state-dir",
                metavar="DIR",
                help="the ledger's folder, if not the config's (a service's: /var/lib/dropscribe)",
            )
        if name == "retry":
            cmd.add_argument(
                "paths", nargs="*", metavar="PATH", help="quarantined files, or the paths they had"
            )
            cmd.add_argument("--all", action="store_true", help="every quarantined recording")
        if name == "status":
            cmd.add_argument(
                "--json", action="store_true", help="as JSON for scripts (its shape: see docs)"
            )
        if name == "explain":
            cmd.add_argument("path", metavar="PATH", help="a file in (or meant for) an inbox")
        if name == "service":  # here, not in commands/service.py: --help imports no command
            cmd.add_argument("action", choices=["install", "uninstall"], help="set up, or undo")
            cmd.add_argument(
                "--dry-run", action="store_true", help="print what it would do, do nothing"
            )
        if name == "ledger":
            cmd.add_argument("action", choices=["migrate"], help="what to do with the ledger")
        if name == "search":  # issue 35; the command is commands/search.py
            searchargs.add(cmd)
        if name == "rehearse":
            cmd.add_argument("--inbox", required=True, metavar="PATH", help="the inbox's path")
            cmd.add_argument("--model", required=True, help="the model to try")
            cmd.add_argument("--endpoint", help="the endpoint to try it on (default: the inbox's)")
            cmd.add_argument(
                "--sample", type=int, default=5, metavar="N", help="recordings to try (default 5)"
            )
            cmd.add_argument(
                "--apply",
                action="store_true",
                help="then set the inbox's model: in the config file (a backup beside it)",
            )
    return parser


READERS = (
    "status",
    "explain",
    "retry",
    "ledger",
    "search",
)  # commands that work on a ledger, not an endpoint


def _read(args: argparse.Namespace, cfg: Config) -> int:
    """A command that works on the ledger (READERS)."""
    if getattr(args, "state_dir", None):
        cfg = dataclasses.replace(cfg, state_dir=Path(args.state_dir).expanduser().absolute())
    match args.command:
        case "status":
            from dropscribe.commands import status  # noqa: PLC0415 - see the imports

            return status.status(cfg, as_json=args.json)
        case "explain":
            from dropscribe.commands import explain  # noqa: PLC0415 - see the imports

            return explain.explain(cfg, Path(args.path).expanduser().absolute())
        case "ledger":
            from dropscribe.commands import migrate  # noqa: PLC0415 - see the imports

            return migrate.migrate(cfg)
        case "search":
            from dropscribe.commands import search  # noqa: PLC0415 - see the imports

            return search.main(cfg, args)
    if not args.paths and not args.all:
        return _fail("retry: name quarantined files, or give --all")
    from dropscribe.commands import retry  # noqa: PLC0415 - see the imports

    return retry.retry(cfg, [Path(p).resolve() for p in args.paths])


def _piped(command: Callable[[], int]) -> int:
    """A command whose output's reader went away (``status | head -1``) ends quietly
    with exit 1, as Python's docs advise, rather than with a traceback."""
    try:
        code = command()
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # for the exit's flush
        return EXIT_FAILED
    return code


def _check(cfg: Config) -> int:
    """check-config beyond the file: problems (exit 2), then what will stop working."""
    from dropscribe.config import preflight  # noqa: PLC0415 - see the imports
    from dropscribe.transcribe import lookout  # noqa: PLC0415 - see the imports

    for warning in preflight.warnings(cfg):
        print(f"dropscribe: {cfg.source}: warning: {warning}", file=sys.stderr)
    found = preflight.problems(cfg)
    for reason in found:
        print(f"dropscribe: {cfg.source}: {reason}", file=sys.stderr)
    for line in lookout.announced_lines(cfg, dt.datetime.now(dt.UTC).date()):
        print(f"dropscribe: {cfg.source}: warning: {line}", file=sys.stderr)
    if found:
        return EXIT_CONFIG
    inboxes, endpoints = len(cfg.inboxes), len(cfg.endpoints)
    print(
        f"{cfg.source}: ok ({inboxes} inbox{'es' * (inboxes != 1)},"
        f" {endpoints} endpoint{'s' * (endpoints != 1)})"
    )
    return EXIT_OK


def _fail(message: str) -> int:
    print(f"dropscribe: {message}", file=sys.stderr)
    return EXIT_CONFIG


SERVING = {"run", "once"}  # the commands that stop cleanly on SIGTERM and SIGINT


def main(argv: Sequence[str] | None = None) -> int:
    early = signals.EarlySignals()  # before any heavy import
    if isinstance(sys.stdout, io.TextIOWrapper):  # print file names as their bytes, like ls
        sys.stdout.reconfigure(errors="surrogateescape")  # (a non-UTF-8 name cannot crash)
    args = None
    try:
        words = sys.argv[1:] if argv is None else argv
        args = _parser().parse_args(searchargs.arranged(words))  # search's -words
    finally:  # --help, --version and a wrong argument exit from here
        if args is None or args.command not in SERVING:
            early.release()
    if args.command == "service":
        from dropscribe.commands import service  # noqa: PLC0415 - see the imports

        return service.main(args)
    from dropscribe.loading import checked  # noqa: PLC0415 - see the imports
    from dropscribe.ops import log  # noqa: PLC0415 - see the imports

    try:  # status, explain and retry send nothing: they need no API key
        cfg = checked.load(args.config, keys=args.command not in READERS)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"dropscribe: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        return _piped(lambda: _check(cfg))
    if args.command in READERS:
        return _piped(lambda: _read(args, cfg))
    if args.command == "rehearse":
        log.configure("auto", "warning")
        inbox = Path(args.inbox).expanduser().resolve()
        from dropscribe.commands import rehearse  # noqa: PLC0415 - see the imports

        return rehearse.rehearse(
            cfg, inbox, args.model, args.endpoint, max(1, args.sample), apply=args.apply
        )
    once = args.command == "once"
    bar = once and sys.stderr.isatty() and cfg.log_format != "json"
    # once on a terminal: a progress bar, and only warnings and errors as events.
    level = "warning" if bar and cfg.log_level in {"debug", "info"} else cfg.log_level
    from dropscribe.ops import progress  # noqa: PLC0415 - see the imports

    shown = progress.Bar(sys.stderr) if bar else None
    log.configure(cfg.log_format, level, stream=shown, final=True)  # log: is restart-only
    return _serve(cfg, once=once, level=level, bar=shown, early=early)


def _serve(
    cfg: Config,
    *,
    once: bool,
    level: str,
    bar: progress.Bar | None = None,
    early: signals.EarlySignals | None = None,
) -> int:
    stop = threading.Event()
    relay = signals.install(stop, early)
    if early is not None and early.heard is not None:  # stopped while starting: nothing ran
        relay.close()
        return EXIT_OK
    import structlog  # noqa: PLC0415 - see the imports

    from dropscribe.service import Daemon  # noqa: PLC0415 - the commands that only read start fast

    log = structlog.get_logger("dropscribe")
    daemon: Daemon | None = None
    try:
        daemon = Daemon(cfg)
        daemon.log_level = level
        failed = daemon.run(
            stop, once=once, reload=relay.reload.take, progress=bar.draw if bar else None
        )
        if bar is not None and daemon.tally is not None:
            bar.finish(daemon.tally, cfg)
        code = EXIT_FAILED if once and failed else EXIT_OK
        if once and not failed and daemon.tally is not None and daemon.tally.unreachable:
            code = EXIT_UNREACHABLE
    except AlreadyRunningError as exc:
        code = _fail(
            f"{exc.strerror} ({cfg.state_dir}); to run this config beside it, give it a"
            f" folder of its own: state_dir: in {cfg.source}"
        )
    except SetupError as exc:
        code = _fail(str(exc))
    except (WorkersFailedError, StateLostError) as exc:
        log.error("daemon.failed", error=str(exc))
        code = EXIT_FAILED
    except Exception:
        log.exception("daemon.crashed")
        code = EXIT_FAILED
    relay.close()
    return _leave(code, abandoned=daemon.abandoned if daemon is not None else 0)


def _leave(code: int, *, abandoned: int) -> NoReturn:
    """Every end of ``_serve`` once the Daemon was made, a failure's and a crash's too:
    ``code``, by ``os._exit``, without the interpreter's teardown. Jobs may still run in
    threads (a local transcription inside CTranslate2, an upload), or a thread of ours has
    not ended (the radar's request in flight, the model's idle unloader): tearing the
    interpreter down under a running thread ends in SIGSEGV or SIGABRT (CPython 3.13's
    finalizer, seen in CI), or waits for it. And with none left, the teardown of some 770
    modules took 2 to 4.7 s after ``daemon.stopped`` at load 20 (flake22), past the promise
    of an exit within ``shutdown_grace`` plus 1 s; the worker processes leave this way
    too (flakes19). What the jobs did is in the ledger (crash-safe), and jobs run again
    at the next start."""
    left = [t.name for t in threading.enumerate() if t is not threading.main_thread()]
    if abandoned or left:
        import structlog  # noqa: PLC0415 - see the imports

        structlog.get_logger("dropscribe").debug("daemon.threads_left", threads=left)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # its reader gone (attack22)
            stream.flush()
    os._exit(code)
