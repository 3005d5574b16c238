"""Completion hooks: tell another program that a file is finished.

A hook is a command (an argv list, run without a shell, the outcome as JSON on
stdin and in ``DROPSCRIBE_*`` variables) and/or a webhook (the same JSON POSTed).
A hook that fails or hangs is logged; the transcript is already safe on disk. A file
with steps after the transcript calls it again once they are written (outcome ``steps``,
``steps/stepper.py``), its JSON naming the steps' sidecars too.

Names are bytes on Linux, and a hook gets them exactly: the JSON on stdin is the
one form that cannot be split wrongly (a newline in a name is ``\\n`` inside a
string; a byte that is not UTF-8 is ``\\udcNN``, which Python's ``json`` plus
``os.fsencode`` turn back into that byte). The variables stay for simple scripts;
they are passed as the name's own bytes. What a hook prints is read as bytes, at
most OUTPUT_BYTES of each stream, decoded with U+FFFD for what is not UTF-8: no
output, however long or odd, can fail a job or a retry.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import signal
import subprocess
import time
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe import names
from dropscribe.errors import SetupError

if TYPE_CHECKING:
    from dropscribe.vocab.settings import HookModel

log = structlog.get_logger("dropscribe")

# What a hook inherits from the daemon's environment; nothing else (API keys live there).
INHERITED = ("PATH", "HOME", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "TMPDIR", "USER", "LOGNAME")
OUTPUT_BYTES = 64 * 1024  # kept of each of stdout and stderr; the rest is read and dropped
SHOWN = 500  # characters of stderr in a hook.failed event
EXITED_GRACE = 1.0  # seconds to wait for the pipes after the hook exits (a child holds them)


def run(hook: HookModel, payload: dict[str, Any]) -> None:
    """Run the command and/or POST the webhook; never raises: whatever befalls the hook
    is the hook's (``hook.failed``), never its file's, whose sidecars are written."""
    try:
        body = names.json_text(payload).encode("utf-8", "surrogateescape")
        if hook.command:
            _command(hook, payload, body)
        if hook.webhook:
            _webhook(hook, body)
    except Exception as exc:  # a bug of ours (review16): reported with its stack, not raised
        log.exception("hook.failed", kind="hook", error=exc.__class__.__name__)


def environment(payload: dict[str, Any]) -> dict[bytes, bytes]:
    """The hook's environment as bytes: a name is passed as the bytes it has on disk."""
    env = {
        name.encode(): os.environb[name.encode()]
        for name in INHERITED
        if name.encode() in os.environb
    }
    values = {
        "DROPSCRIBE_FILE": str(payload["file"]),
        "DROPSCRIBE_OUTCOME": str(payload["outcome"]),
        "DROPSCRIBE_SIDECARS": "\n".join(payload["sidecars"]),
    }
    if payload.get("late"):  # hooks20: owed by a process that ended before it ran
        values["DROPSCRIBE_LATE"] = "1"
    for name, value in values.items():
        env[name.encode()] = os.fsencode(value)
    return env


def _command(hook: HookModel, payload: dict[str, Any], body: bytes) -> None:
    assert hook.command is not None
    try:
        proc = subprocess.Popen(  # noqa: S603 - an argv list from the admin's config, no shell
            list(hook.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=environment(payload),
            start_new_session=True,  # its own process group: a timeout ends its children too
        )
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        error = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        log.warning("hook.failed", kind="command", error=error)
        return
    with proc:
        finished, stderr = _talk(proc, body, hook.timeout)
    if not finished:
        log.warning("hook.failed", kind="command", error=f"timed out after {hook.timeout:g}s")
    elif proc.returncode:
        shown = stderr.decode("utf-8", "replace")[-SHOWN:]
        log.warning("hook.failed", kind="command", exit_code=proc.returncode, stderr=shown)
    else:
        log.info("hook.ran", kind="command")


def _talk(proc: subprocess.Popen[bytes], body: bytes, timeout: float) -> tuple[bool, bytes]:
    """Write ``body`` to the hook's stdin and read its output (the last OUTPUT_BYTES of
    stderr kept, stdout dropped) until it exits, or ``timeout`` ends it (its whole
    process group killed). Whether it exited in time, and its stderr."""
    assert proc.stdin is not None
    assert proc.stdout is not None
    assert proc.stderr is not None
    deadline = time.monotonic() + timeout
    kept = bytearray()
    with selectors.DefaultSelector() as selector:
        os.set_blocking(proc.stdin.fileno(), False)
        if body:
            selector.register(proc.stdin, selectors.EVENT_WRITE)
        else:
            proc.stdin.close()
        selector.register(proc.stdout, selectors.EVENT_READ)
        selector.register(proc.stderr, selectors.EVENT_READ)
        sent = 0
        while selector.get_map() and (left := deadline - time.monotonic()) > 0:
            if proc.poll() is not None:  # exited: what is still open belongs to a child
                deadline = min(deadline, time.monotonic() + EXITED_GRACE)
            for key, _ in selector.select(min(left, 0.5)):
                if key.fileobj is proc.stdin:
                    sent = _send(proc, selector, body, sent)
                    continue
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                elif key.fileobj is proc.stderr:
                    kept += chunk
                    del kept[:-OUTPUT_BYTES]
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        with contextlib.suppress(OSError):
            stream.close()
    try:
        proc.wait(max(0.0, deadline - time.monotonic()))
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return False, bytes(kept)
    return True, bytes(kept)


def _send(
    proc: subprocess.Popen[bytes], selector: selectors.BaseSelector, body: bytes, sent: int
) -> int:
    """Write what the pipe takes of the rest of ``body``; close stdin when it is all
    sent, or when the hook closed it (it need not read the JSON)."""
    assert proc.stdin is not None
    try:
        sent += os.write(proc.stdin.fileno(), body[sent : sent + 65536])
    except BlockingIOError:
        return sent
    except OSError:  # BrokenPipeError: the hook does not read its stdin
        sent = len(body)
    if sent >= len(body):
        selector.unregister(proc.stdin)
        with contextlib.suppress(OSError):
            proc.stdin.close()
    return sent


def _webhook(hook: HookModel, body: bytes) -> None:
    """POST ``body``; the whole request (the name's lookup, a proxy's too, and the answer's
    headers included) within hook.timeout."""
    assert hook.webhook is not None
    import httpx  # noqa: PLC0415 - only a config with a webhook pays for it

    from dropscribe.transcribe import cutoff  # noqa: PLC0415 - as httpx

    # hooks16: the uploads' transport, so the name (and an environment proxy's) is looked
    # up under the deadline: a plain client's getaddrinfo held the worker past it.
    # flake22: made before the deadline starts, which bounds the wait for the network and
    # not our own work: the client's TLS contexts (two CA bundles read) took 0.1 s on an
    # idle machine and over 1 s of a 2-s timeout at load 16, and the hook failed unsent
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=0)
    try:
        client = httpx.Client(
            timeout=hook.timeout, limits=limits, transport=cutoff.transport(hook.webhook, limits)
        )
    except (httpx.InvalidURL, SetupError) as exc:  # SetupError: a proxy httpx cannot use
        log.warning("hook.failed", kind="webhook", **_failure(exc, hook, cut_done=False))
        return
    with client, cutoff.deadline(hook.timeout) as cut:
        try:  # streamed, and the answer's body never read: only its status counts
            with (
                client.stream(
                    "POST",
                    hook.webhook,
                    content=body,
                    headers={"Content-Type": "application/json"},
                    extensions={"trace": cut.trace},
                ) as response,
            ):
                status = response.status_code
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            log.warning("hook.failed", kind="webhook", **_failure(exc, hook, cut_done=cut.done))
            return
    if status >= 400:
        log.warning("hook.failed", kind="webhook", status=status)
    else:
        log.info("hook.ran", kind="webhook", status=status)


def _failure(exc: Exception, hook: HookModel, *, cut_done: bool) -> dict[str, Any]:
    """The hook.failed fields for what the webhook's request raised: no connection in
    time says which name or bound (the host, never the URL: it may hold a token); a cut
    socket is a timeout; else the error's kind."""
    from dropscribe.transcribe import cutoff, resolve  # noqa: PLC0415 - as httpx

    if isinstance(exc, SetupError):  # review16: an environment proxy httpx cannot use
        return {"error": str(exc)}
    if isinstance(exc.__cause__, resolve.Unresolved | cutoff.Late):
        return {"error": str(exc.__cause__), "timeout": hook.timeout}
    if cut_done:  # the deadline cut the socket: whatever httpx saw, it was that
        return {"error": "timeout", "timeout": hook.timeout}
    return {"error": exc.__class__.__name__}
