"""Commands -> exit codes. Nothing here prints a traceback for a user's mistake."""

from __future__ import annotations

import argparse
import signal
import sqlite3
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import structlog

from dropscribe import __version__, config, disposition, log
from dropscribe.errors import ConfigError
from dropscribe.journal import Journal
from dropscribe.service import LEDGER_NAME, AlreadyRunningError, Daemon

if TYPE_CHECKING:
    from collections.abc import Sequence
    from types import FrameType

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_CONFIG = 2

EPILOG = """\
exit codes:
  0  success (run: stopped cleanly by SIGTERM or SIGINT; SIGHUP reloads the config)
  1  once: at least one file failed; run: the daemon crashed
  2  the config or the set-up is wrong (every problem is printed, one per line)
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
        ("status", "files by state and the latest failures, from the ledger"),
        ("retry", "put quarantined recordings back into their inbox to be tried again"),
    ):
        cmd = sub.add_parser(name, help=text, description=text, epilog=EPILOG,
                             formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        cmd.add_argument("-c", "--config", required=True, metavar="CONFIG",
                         help="path to the YAML config file")  # fmt: skip
        if name == "retry":
            cmd.add_argument("paths", nargs="*", metavar="PATH",
                             help="quarantined files, or the paths they had")  # fmt: skip
            cmd.add_argument("--all", action="store_true", help="every quarantined recording")
    return parser


def _fail(message: str) -> int:
    print(f"dropscribe: {message}", file=sys.stderr)
    return EXIT_CONFIG


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        cfg = config.load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"dropscribe: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    if args.command == "check-config":
        print(f"{cfg.source}: ok ({len(cfg.inboxes)} inboxes, {len(cfg.endpoints)} endpoints)")
        return EXIT_OK
    if args.command == "status":
        return _status(cfg)
    if args.command == "retry":
        if not args.paths and not args.all:
            return _fail("retry: name quarantined files, or give --all")
        return _retry(cfg, [Path(p).resolve() for p in args.paths])
    log.configure(cfg.log_format, cfg.log_level)
    return _serve(cfg, once=args.command == "once")


def _serve(cfg: config.Config, *, once: bool) -> int:
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    reload = threading.Event()

    def on_hangup(_signum: int, _frame: FrameType | None) -> None:
        reload.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGHUP, on_hangup)
    try:
        failed = Daemon(cfg).run(stop, once=once, reload=reload)
    except AlreadyRunningError as exc:
        return _fail(f"{exc.strerror} ({cfg.state_dir})")
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"cannot use state_dir {cfg.state_dir}: {exc}")
    except Exception:
        structlog.get_logger("dropscribe").exception("daemon.crashed")
        return EXIT_FAILED
    return EXIT_FAILED if once and failed else EXIT_OK


def _status(cfg: config.Config) -> int:
    path = cfg.state_dir / LEDGER_NAME
    if not path.exists():
        print(f"no ledger yet at {path}: the daemon has not run with this state_dir")
        return EXIT_OK
    try:
        journal = Journal(path)
        counts = journal.counts()
        failures = journal.latest_failures()
        journal.close()
    except sqlite3.Error as exc:
        return _fail(f"cannot read ledger {path}: {exc}")
    print(f"ledger: {path}")
    for state in ("done", "uploading", "failed", "error"):
        print(f"  {state:<10} {counts.get(state, 0)}")
    if failures:
        print("latest failures:")
        for row in failures:
            print(f"  {row.path}: {row.error}")
    return EXIT_OK


def _retry(cfg: config.Config, paths: list[Path]) -> int:
    """Move quarantined recordings back and reset their attempts; the daemon picks them up."""
    try:
        journal = Journal(cfg.state_dir / LEDGER_NAME)
    except (OSError, sqlite3.Error) as exc:
        return _fail(f"cannot open ledger in {cfg.state_dir}: {exc}")
    wanted = set(paths)
    found: set[Path] = set()
    problems = 0
    try:
        for inbox in cfg.inboxes:
            for item in disposition.failed(inbox):
                if wanted and not wanted & {item.path, item.source}:
                    continue
                found |= {item.path, item.source}
                # Forget first: a running daemon sees the file come back at once.
                journal.forget_failure(item.source, item.key)
                try:
                    back = disposition.restore(item)
                except OSError as exc:
                    print(f"{item.path}: cannot move back: {exc.strerror or exc}", file=sys.stderr)
                    problems += 1
                    continue
                print(f"{back}: queued again (was: {item.reason or 'unknown reason'})")
    finally:
        journal.close()
    for missing in sorted(wanted - found):
        print(f"{missing}: not a quarantined recording", file=sys.stderr)
        problems += 1
    if not found and not wanted:
        print("nothing is quarantined")
    return EXIT_FAILED if problems else EXIT_OK
