"""The project's exceptions, every one of them (a test holds this drawing to the code).

    Exception
    ├── DropscribeError                       everything dropscribe raises on purpose
    │   ├── ConfigError (ValueError)          the config file is unreadable or invalid
    │   ├── SetupError                        cannot start: state_dir, an inbox's watch, a port
    │   ├── TranscriptionError                an upload did not produce a transcript
    │   │   ├── RetryableError                408, 409, 5xx, timeouts, dropped connections
    │   │   │   └── OutageError               no connection, 429, 502, 503, 504: not the file's
    │   │   ├── EndpointError                 401, 403, 404, quota 429: the endpoint is unusable
    │   │   │   ├── EndpointUnreachable       in ``once``: down for every try; the file stays
    │   │   │   ├── ModelGone                 the model is shut down or withdrawn: its pair waits
    │   │   │   ├── EndpointRuledOut          in ``once``: an earlier file found it unusable
    │   │   │   └── EndpointWaits             asked to wait long, or no price: the worker is freed
    │   │   └── PermanentError                400, 413, 415, 422, bad answers, not audio
    │   │       ├── EmptyAnswer               no text for audio with speech: the next endpoint
    │   │       └── ContextTooLong            a chat request over the model's context: cut smaller
    │   ├── SidecarError (OSError)            a transcript could not be written to disk
    │   ├── LedgerError                       the ledger cannot read or write (any backend's error)
    │   │   ├── LedgerUnavailable             a shared ledger cannot be reached: the file waits
    │   │   │   └── LedgerGaveUp (Abandoned)  stopping, the grace over: no more waiting for it
    │   │   └── LedgerTooNew                  a later dropscribe wrote it: upgrade, do not guess
    │   ├── ClaimedElsewhere                  another host holds the job's claim: later
    │   ├── Fenced                            this host's claim ran out: write nothing
    │   ├── StateLostError                    the state_dir was deleted or replaced: stop
    │   └── WorkersFailedError                worker processes die as they start: stop
    ├── OSError
    │   └── AlreadyRunningError               another dropscribe serves the same state_dir
    ├── Abandoned                             a signal: the daemon stops, leave the job
    ├── Replan                                a signal: decide again how to send the file
    └── PassedOver                            a signal: the endpoint cannot take it; the next may

``Problem`` is not an exception: one thing wrong in a config file, which ConfigError
lists. Only ``http.py`` catches ``httpx`` exceptions; it turns them into these, each
carrying the status, the request id and the server's message as attributes. Likewise
only ``ledger/`` catches ``sqlite3`` and ``psycopg`` errors: they leave it as
``LedgerError`` (the backend's own error kept as ``__cause__``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any


class DropscribeError(Exception):
    """Base class of everything dropscribe raises on purpose."""


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a config file, with where it is."""

    file: str
    line: int | None
    key: str
    message: str

    def __post_init__(self) -> None:
        """long18: the values a message quotes, cut where they are long (a key is, where
        it is spelled: ``config/keys.py``, ``config/locate.py``): an ``endpoint:``, a
        ``path:`` or a ``model:`` of 200,000 characters made a line of 200 kB in
        check-config and in the SIGHUP's event. Cut here, whichever message quotes them:
        every stretch without a space after ``LONGEST_RUN`` characters, and the whole
        message, in its middle (the reason is often at its end), past ``LONGEST_MESSAGE``."""
        object.__setattr__(self, "message", _shortened(self.message))

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        key = f" {self.key}:" if self.key else ""
        return f"{where}:{key} {self.message}"


LONGEST_RUN = 200  # characters of a stretch without a space in a config problem
LONGEST_MESSAGE = 1000  # characters of a config problem's message


def _shortened(message: str) -> str:
    runs = [
        run if len(run) <= LONGEST_RUN else run[: LONGEST_RUN - 1] + "…"
        for run in re.split(r"(\s+)", message)
    ]
    message = "".join(runs)
    if len(message) <= LONGEST_MESSAGE:
        return message
    head = LONGEST_MESSAGE * 2 // 3
    return message[:head] + " … " + message[head - LONGEST_MESSAGE + 3 :]


class ConfigError(DropscribeError, ValueError):
    """The config could not be loaded; ``problems`` lists every reason at once."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SetupError(DropscribeError):
    """The daemon cannot start: its state_dir, an inbox's watch, the metrics port.
    The message says which, and why; the command exits 2."""


class TranscriptionError(DropscribeError):
    """The endpoint did not give us a transcript."""

    retryable = False

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        request_id: str | None = None,
        code: str | None = None,
        retry_after: float | None = None,
        param: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.request_id = request_id
        self.code = code
        self.retry_after = retry_after
        self.param = param  # the request field the server named, if it named one
        self.attempts = 0  # uploads made for this file when it was given up


class RetryableError(TranscriptionError):
    """Trying again later may succeed. ``outage``: the request never reached a working
    server (no connection, overload, a gateway without its upstream), so it says nothing
    about the file and costs the file none of its attempts."""

    retryable = True
    outage = False


class OutageError(RetryableError):
    """A RetryableError that is the endpoint's and never the file's (see ``outage``)."""

    outage = True


class PermanentError(TranscriptionError):
    """Trying again with the same request will fail the same way."""


class EmptyAnswer(PermanentError):  # noqa: N818 - named for what the answer is
    """The answer had no text although speech was heard in the audio: with several
    endpoints, the file is tried on the next (``jobs/cascade.py``)."""


class ContextTooLong(PermanentError):  # noqa: N818 - named for what the request is
    """A chat request is over the model's context (``steps/``); ``tokens`` is the limit
    the server named, if any: the step is cut into smaller parts."""

    def __init__(self, message: str, tokens: int | None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.tokens = tokens


class EndpointError(TranscriptionError):
    """The endpoint or its account cannot serve anyone (bad key, unknown model, no quota).

    Not the file's fault: the endpoint is paused and the file waits for it.
    """

    outage = False  # EndpointUnreachable: no server answered at all
    event = "file.failed"  # how the runner logs the file left waiting for it


class EndpointUnreachable(EndpointError):  # noqa: N818 - named for what the endpoint is
    """In ``once``: every try of a file found the endpoint down (no connection, a gateway
    without its upstream). The file stays where it is, later files of the endpoint are
    not sent, and ``once`` exits 3."""

    outage = True


class ModelGone(EndpointError):  # noqa: N818 - named for what the model is
    """The endpoint no longer serves the model (shut down, or withdrawn by a gateway):
    the (endpoint, model) pair waits and is probed hourly; other models go on."""


class SidecarError(DropscribeError, OSError):
    """A sidecar could not be written (full disk, unwritable folder, ...)."""


class LedgerError(DropscribeError):
    """The ledger could not read or write (a full state_dir, a locked or damaged file, a
    statement the database refused). Every backend's own errors leave ``ledger/`` as this,
    so a caller holding something paid for catches one type and keeps it."""


class LedgerTooNew(LedgerError):  # noqa: N818 - named for what the ledger is
    """The ledger's layout is newer than this dropscribe knows: it is refused, never
    guessed at (upgrade dropscribe, or use another state_dir)."""


class LedgerUnavailable(LedgerError):  # noqa: N818 - named for what the ledger is
    """A shared ledger's database cannot be reached (or refused the statement), or the
    SQLite ledger's write turn was not had within its wait (another process holds it:
    lock17): the file waits, nothing is counted against it, and it comes again at the
    next rescan."""


class ClaimedElsewhere(DropscribeError):  # noqa: N818 - a fact, not a failure
    """Another host holds the claim on this job; it comes again at the next rescan (and
    is taken over once that host's lease has run out)."""

    def __init__(self, host: str, seconds_left: float) -> None:
        super().__init__(f"claimed by host {host} (its lease runs {seconds_left:.0f} s more)")
        self.host = host
        self.seconds_left = seconds_left


class Fenced(DropscribeError):  # noqa: N818 - named for what happened to the claim
    """This host's claim on a job ran out (or could not be confirmed) and may be another
    host's now: it must write nothing for that job."""


# The daemon itself cannot go on.


class AlreadyRunningError(OSError):
    """Another dropscribe process serves the same state_dir."""


class StateLostError(DropscribeError):
    """The state_dir was deleted or replaced under a running daemon: its lock no longer
    keeps a second daemon off the ledger, so this one stops (and systemd restarts it)."""


class WorkersFailedError(DropscribeError):
    """Worker processes die as soon as they start: the daemon stops rather than spin."""


# Signals between two functions, not errors a person sees.


class Abandoned(Exception):  # noqa: N818 - a signal between two functions, not an error
    """The daemon is stopping; leave the job for the next start."""


class LedgerGaveUp(LedgerUnavailable, Abandoned):
    """A write waited for a ledger held by another process until the stopping daemon's
    grace was over (grace18): nothing of it was written. A job leaves its file for the
    next start (``Abandoned``); any other caller has a ledger that was not written."""


class Replan(Exception):  # noqa: N818 - a signal between two functions, not an error
    """The server refused something this upload was planned around (timestamps, its
    length): decide again how to send the file. The attempt was not counted."""


class EndpointRuledOut(EndpointError):  # noqa: N818 - named for what the endpoint is
    """In ``once``: the endpoint (or the model on it) already failed a file in a way no
    retry mends; every later file of it fails at once."""


class EndpointWaits(EndpointError):  # noqa: N818 - named for what the file does
    """hostile14b: the endpoint cannot take files for a long while (a 429's long
    Retry-After pauses it) or until the config changes (a budget without a price): the
    file waits where it is (its attempt not counted) rather than holding a worker that
    files of other endpoints need. It comes again at ``until`` (epoch seconds: when the
    pause ends, or the budget's period turns; wake15), else at the next rescan."""

    event = "file.waiting"

    def __init__(self, message: str, *, until: float | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.until = until


class PassedOver(Exception):  # noqa: N818 - a signal between two functions, not an error
    """While a file has another endpoint to go to: this one cannot take it now (paused,
    out of quota, its model gone, down); ``why`` says which, ``sent`` whether a request
    of this file was answered so (``transcribe/fallback.py``)."""

    def __init__(
        self, endpoint: str, why: str, message: str, *, sent: bool, until: float | None = None
    ) -> None:
        super().__init__(f"{endpoint}: {why}: {message}")
        self.endpoint = endpoint
        self.why = why
        self.message = message
        self.sent = sent
        self.until = until  # wake15: when it can take files again (epoch seconds), if known
