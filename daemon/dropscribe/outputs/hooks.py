"""Completion hooks: tell another program that a file is finished.

A hook is a command (an argv list, run without a shell, the outcome as JSON on
stdin and in ``DROPSCRIBE_*`` variables) and/or a webhook (the same JSON POSTed).
A hook that fails or hangs is logged; the transcript is already safe on disk.
"""

from __future__ import annotations

import os
import subprocess
from typing import TYPE_CHECKING, Any

import httpx
import structlog

from dropscribe import names

if TYPE_CHECKING:
    from dropscribe.config.schema import HookModel

log = structlog.get_logger("dropscribe")

# What a hook inherits from the daemon's environment; nothing else (API keys live there).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")


def run(hook: HookModel, payload: dict[str, Any]) -> None:
    """Run the command and/or POST the webhook; never raises."""
    body = names.json_text(payload)
    if hook.command:
        _command(hook, payload, body)
    if hook.webhook:
        _webhook(hook, body)


def _command(hook: HookModel, payload: dict[str, Any], body: str) -> None:
    assert hook.command is not None
    env = {
        **{name: os.environ[name] for name in INHERITED if name in os.environ},
        "DROPSCRIBE_FILE": str(payload["file"]),
        "DROPSCRIBE_OUTCOME": str(payload["outcome"]),
        "DROPSCRIBE_SIDECARS": "\n".join(payload["sidecars"]),
    }
    try:
        done = subprocess.run(  # noqa: S603 - an argv list from the admin's config, no shell
            list(hook.command),
            input=body,
            text=True,
            env=env,
            capture_output=True,
            timeout=hook.timeout,
            check=False,
        )
    except subprocess.TimeoutExpired:
        log.warning("hook.failed", kind="command", error=f"timed out after {hook.timeout:g}s")
        return
    except OSError as exc:
        log.warning("hook.failed", kind="command", error=exc.strerror or str(exc))
        return
    if done.returncode:
        log.warning(
            "hook.failed", kind="command", exit_code=done.returncode, stderr=done.stderr[-500:]
        )
    else:
        log.info("hook.ran", kind="command")


def _webhook(hook: HookModel, body: str) -> None:
    assert hook.webhook is not None
    try:
        response = httpx.post(
            hook.webhook,
            content=body.encode(),
            headers={"Content-Type": "application/json"},
            timeout=hook.timeout,
        )
    except httpx.HTTPError as exc:
        log.warning("hook.failed", kind="webhook", error=exc.__class__.__name__)
        return
    if response.status_code >= 400:
        log.warning("hook.failed", kind="webhook", status=response.status_code)
    else:
        log.info("hook.ran", kind="webhook", status=response.status_code)
