"""Reading an API key from a file, and saying why one could not be read."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe.config import files
from dropscribe.config.files import unreadable

if TYPE_CHECKING:
    from dropscribe.config.locate import KeyPath


def read(
    name: str, base: Path, environ: dict[str, str], where: KeyPath, problem: Any
) -> str | None:
    """The key in file ``name``, or None with the reason given to ``problem``. A bare name
    is looked up in systemd's credentials folder (LoadCredential=) first."""
    # A bare name is looked up in systemd's credentials folder (LoadCredential=) first.
    candidates = []
    if (creds := environ.get("CREDENTIALS_DIRECTORY")) and "/" not in name:
        candidates.append(Path(creds) / name)
    try:
        candidates.append(files.expanded(name, base))
    except files.UnusableError as exc:
        problem(where, str(exc))
        return None
    for candidate in candidates:
        try:  # a FIFO or a device is refused, not waited on or read for ever
            key = files.read(candidate, files.KEY_FILE).decode("utf-8").strip()
        except FileNotFoundError:
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problem(where, f"cannot read key file {candidate}: {unreadable(exc)}")
            return None
        if not key:
            problem(where, f"key file {candidate} is empty")
        return key or None
    problem(where, f"key file {candidates[-1]} does not exist")
    return None


def check(key: str | None, env: str | None, file: str | None, where: KeyPath, problem: Any) -> None:
    """Tell ``problem`` if the key read from variable ``env`` or ``file`` cannot be sent."""
    if key and (bad := unsendable(key)):
        setting = "api_key_env" if env else "api_key_file"
        problem((*where, setting), f"the API key from {env or file} {bad}")


def unsendable(key: str) -> str | None:
    """Why ``key`` cannot go in an HTTP header, if it cannot (never quoting it)."""
    if not key.isascii():
        return "holds a character that is not ASCII (pasted from a document?)"
    if any(not (" " < ch < "\x7f") for ch in key):
        return "holds a space or a control character (a stray newline or tab?)"
    return None
