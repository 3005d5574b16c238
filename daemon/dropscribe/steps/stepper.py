"""The steps after the transcript, in a thread of the main process beside the workers:
a chat endpoint that is slow or away delays steps, never a transcript.

It looks at files the ledger has done (all of them at start, at a reload and every
rescan; those done since the last look every turn; those this daemon's workers finished,
at once and until their done state is committed; those whose steps are due again),
and for each step a file's settings ask for that its sidecars do not show yet: the
stored result of the same transcript and step settings if there is one, else the step
done now (its attempts counted; retried with backoff; quarantined after the chat
endpoint's max_attempts with its reason, an outage never counting); then its sidecars
written and the ledger told which result they show. Each step is claimed first
(``StepRows.hold_step``): of several hosts sharing a ledger one asks the chat model, and
another takes the step over once that host's lease has run out. Every write of a step
is fenced by its claim (stepsfence): a host whose lease ran out meanwhile (paused,
stalled, cut off) writes neither its result nor its sidecars (``step.fenced``); and the
hook after a file's steps is claimed in the ledger before it runs (``hooked.run``), so
that one host runs it when two finish a file's last steps at once."""

from __future__ import annotations

import json
import random
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, cast

import structlog

from dropscribe.config import rules
from dropscribe.errors import (
    ClaimedElsewhere,
    DropscribeError,
    Fenced,
    LedgerError,
    SidecarError,
    TranscriptionError,
)
from dropscribe.outputs import late
from dropscribe.steps import hooked, sidecars, work
from dropscribe.steps.marks import Marks
from dropscribe.steps.work import Usage, Worker
from dropscribe.transcribe.backoff import delay
from dropscribe.vocab.states import FileState
from dropscribe.vocab.steps import SUMMARY, Step, steps_of

if TYPE_CHECKING:
    from collections.abc import Callable

    import httpx

    from dropscribe.ledger.interface import Claim, FileRow, Stepping
    from dropscribe.ops.metrics import Metrics
    from dropscribe.steps.calls import Caller
    from dropscribe.steps.hooked import HookedRows
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.settings import FolderSettings

log = structlog.get_logger("dropscribe")

TURN = 1.0  # seconds between looks at what was done meanwhile
RETRY_CAP = 300.0  # the longest wait between two tries of a failed step


class Stepper:
    def __init__(
        self,
        ledger: Stepping,
        config: Callable[[], Config],
        *,
        transport: httpx.BaseTransport | None = None,
        metrics: Metrics | None = None,
    ) -> None:
        self._ledger = ledger
        self._metrics = metrics
        self._rows = cast("HookedRows", ledger)  # both backends mix StepRows and OwedRows in
        self._config = config
        self._transport = transport
        self._stop = threading.Event()
        self._poke = threading.Event()
        self._full = True
        self._forgive = True  # at start and after a reload: quarantined steps tried again
        self._since = 0.0
        self._callers: dict[str, Caller] = {}
        self._eager = False  # once: a step waiting for its next try is tried now
        self._marks = Marks()  # stepclaims33: finished here, or claimed elsewhere
        self.left = 0  # steps a turn did not finish (once says so)
        self._thread = threading.Thread(target=self._run, name="dropscribe-steps", daemon=True)

    def wanted(self) -> bool:
        return any(
            layer.values.get("chat") is not None
            for inbox in self._config().inboxes
            for layer in inbox.layers
        )

    def start(self) -> None:
        self._thread.start()

    def run_once(self, stop: threading.Event) -> None:
        """``once``: every step the done files' settings ask for, in this thread, each
        tried now (with the chat endpoint's retries); what is left is said, and the next
        run (of once or the service) tries it again. ``stop`` (a signal) ends it early."""
        self._stop = stop
        self._eager = True
        self.left = 0
        late.deliver(self._rows, self._config(), stop.is_set)  # hooks20: what a run left owed
        if stop.is_set() or not self.wanted():
            return
        self._rows.settled()  # the last file's done state is committed
        self._turn(full=True, now=time.time())
        if self.left:
            log.warning(
                "steps.pending",
                steps=self.left,
                reason="failed, quarantined or stopped: see step.failed",
                action="run once again (or the service): they are tried again",
            )
        else:
            log.info("steps.finished")

    def poke(self, *, full: bool = False) -> None:
        """Look again now (``full``: at every done file, after a reload; quarantined
        steps are tried again, as their cause may be fixed)."""
        self._full = self._full or full
        self._forgive = self._forgive or full
        self._poke.set()

    def finished(self, path: Path) -> None:
        """A worker of this daemon finished ``path``: looked at now, and every turn until
        its done state is read (a write may be queued or slow; a timestamp window would
        miss it) or the next full rescan has passed."""
        self._marks.finished(str(path), time.time() + max(self._config().rescan_seconds, 10 * TURN))
        self._poke.set()

    def stop(self) -> None:
        """Start no more steps (``close`` waits for the one under way)."""
        self._stop.set()
        self._poke.set()

    def close(self, until: float) -> None:
        """Stop, waiting for a step under way until ``until`` (monotonic: the stop's grace
        over, counted once for the whole daemon: grace18), and close the chat clients."""
        self.stop()
        if self._thread.is_alive():
            self._thread.join(max(0.0, until - time.monotonic()))
        for caller in self._callers.values():
            caller.close()

    # ------------------------------------------------------------ the loop

    def _run(self) -> None:
        next_full = 0.0  # monotonic: a wall clock set back delays no full pass (lock17)
        while not self._stop.is_set():
            now, ticks = time.time(), time.monotonic()
            full = self._full or ticks >= next_full
            if full:
                self._full = False
                next_full = ticks + self._config().rescan_seconds
            try:
                if full:  # hooks20: at start and each rescan, the hooks a dead run left owed
                    late.deliver(self._rows, self._config(), self._stop.is_set)
                self._turn(full, now)
            except LedgerError as exc:
                log.warning("steps.ledger_unavailable", error=str(exc))
            except Exception as exc:  # a bug of ours: said, and the loop goes on
                log.exception("steps.crashed", error=f"{exc.__class__.__name__}: {exc}")
            due = min(filter(None, (self._rows.next_due(), self._marks.next_at())), default=None)
            wait = TURN if due is None else min(TURN, max(0.05, due - time.time()))
            self._poke.wait(wait)
            self._poke.clear()

    def _turn(self, full: bool, now: float) -> None:
        if not self.wanted():
            return
        if self._forgive:
            self._forgive = False
            if forgiven := self._rows.steps_forgiven():
                log.info("steps.forgiven", count=forgiven)
        rows = self._rows.done_since(0.0 if full else self._since - 1.0)
        if rows:
            self._since = max(self._since, *(r.updated for r in rows))
        paths = {r.path: r for r in rows}
        again = self._marks.retries_due(time.monotonic())  # attack17: the clock set back
        for path in [*self._rows.steps_due(now), *self._marks.due(now), *again]:
            if path not in paths and (row := self._ledger.file(Path(path))) is not None:
                paths[path] = row
        for path, row in paths.items():
            if row.state == FileState.DONE:
                self._marks.done(path)
        for row in paths.values():
            if self._stop.is_set():
                return
            if row.state == FileState.DONE:
                self._file(row)

    def _caller(self, name: str) -> Caller | None:
        endpoint = self._config().endpoints.get(name)
        if endpoint is None or endpoint.kind != "chat":
            return None
        caller = self._callers.get(name)
        if caller is None or caller.endpoint != endpoint:
            if caller is not None:
                caller.close()
            from dropscribe.steps.calls import Caller  # noqa: PLC0415 - httpx only for steps
            from dropscribe.steps.chat import ChatClient  # noqa: PLC0415

            client = ChatClient(endpoint, transport=self._transport)
            caller = self._callers[name] = Caller(endpoint, self._ledger, self._stop, client=client)
        return caller

    # ------------------------------------------------------------ one file

    def _file(self, row: FileRow) -> None:
        source = Path(row.path)
        inbox = rules.inbox_of(self._config(), source)
        if inbox is None:
            return
        settings = rules.effective(inbox, source)
        steps = steps_of(settings.chat, settings.summary, settings.translate_to)
        if not steps:
            return
        outputs = [Path(p) for p in json.loads(row.outputs or "[]")]
        structlog.contextvars.bind_contextvars(path=row.path, inbox=inbox.name)
        wrote = False
        try:
            for step in steps:
                shaping = step.shaping_hash()
                if self._shows(row, step, shaping, settings, outputs):
                    continue
                try:
                    with self._rows.hold_step(row.key, step.name, shaping, source) as claim:
                        # looked at again in the claim: another host may have done it
                        if self._shows(row, step, shaping, settings, outputs):
                            continue
                        done = self._step(row, (step, shaping, claim), (inbox, settings), outputs)
                except Fenced as exc:  # the host that took the step over writes it
                    log.warning(
                        "step.fenced",
                        step=step.name,
                        error=str(exc),
                        action="nothing was written: the host holding the step now writes it",
                    )
                    continue
                except ClaimedElsewhere as exc:
                    self._marks.elsewhere(row.path, time.time() + exc.seconds_left)
                    log.info(
                        "step.claimed_elsewhere",
                        step=step.name,
                        host=exc.host,
                        seconds_left=round(exc.seconds_left, 1),
                    )
                    continue
                if done is None:
                    return
                wrote = wrote or done
            if wrote:  # lang20: its hook resolved there, with the file's language
                hooked.run(self._rows, row, inbox, settings, steps, outputs)
        finally:
            structlog.contextvars.clear_contextvars()

    def _shows(
        self, row: FileRow, step: Step, shaping: str, settings: FolderSettings, outputs: list[Path]
    ) -> bool:
        """The file's step sidecars show this transcript's result of this step now."""
        shown = sidecars.shown_as(shaping, settings)
        return self._rows.step_shown(Path(row.path), step.name) == (
            str(row.key),
            shown,
        ) and not self._note_lost(row, step, shaping, settings, outputs)

    def _step(
        self,
        row: FileRow,
        held: tuple[Step, str, Claim | None],
        where: tuple[Inbox, FolderSettings],
        outputs: list[Path],
    ) -> bool | None:
        """One step of one file, claimed (``held``: the step, its settings' hash, the
        claim every write is fenced by): its result (stored, or made now) and its
        sidecars; whether they were written (None: the transcript is gone, stop)."""
        step, shaping, claim = held
        inbox, settings = where
        source = Path(row.path)
        result = self._result(row, held, settings)
        if result is None:
            self.left += 1
            return False
        page = work.page(self._ledger, row, settings, source)
        if page is None:
            return None
        made = sidecars.files_of(
            step.name,
            result,
            page,
            settings,
            source,
            outputs,
            rules.sidecar_dir(inbox, settings, source),
        )
        try:
            files = sidecars.published(
                self._ledger, made, inbox, settings, source, row.key, outputs, claim
            )
        except SidecarError as exc:
            log.error("step.sidecar_failed", step=step.name, error=str(exc), will_retry=True)
            self.left += 1
            return False
        shown = sidecars.shown_as(shaping, settings)
        self._rows.step_written(source, step.name, row.key, shown, files, claim)
        log.info("step.written", step=step.name, sidecars=[str(p) for p in files])
        return True

    def _counted(self, caller: Caller, step: Step, usage: Usage, *, failed: bool) -> None:
        if self._metrics is not None:
            used = (usage.tokens_in, usage.tokens_out)
            self._metrics.stepped(caller.endpoint.name, step.name, used, failed=failed)

    def _note_lost(
        self, row: FileRow, step: Step, shaping: str, settings: FolderSettings, outputs: list[Path]
    ) -> bool:
        if step.name != SUMMARY:
            return False
        stored = self._rows.step(row.key, step.name, shaping)
        if stored is None or stored.result is None:
            return False
        return sidecars.note_lost(outputs, settings, str(stored.result.get("markdown", "")))

    def _result(
        self, row: FileRow, held: tuple[Step, str, Claim | None], settings: FolderSettings
    ) -> dict | None:  # type: ignore[type-arg]
        """The step's stored result, or one made now; None while it waits or is quarantined.
        Raises Fenced, its result dropped, if the claim ran out before it was stored."""
        step, shaping, claim = held
        stored = self._rows.step(row.key, step.name, shaping)
        if stored is not None and stored.state == "done" and stored.result is not None:
            log.info("step.reused", step=step.name)
            return stored.result
        if stored is not None and stored.state == "failed":
            return None
        waiting = stored is not None and stored.state == "retrying" and not self._eager
        ripe = self._marks.ripe((row.path, step.name, shaping))
        if waiting and stored is not None and stored.next_at > time.time() and not ripe:
            return None
        caller = self._caller(step.chat.endpoint)
        if caller is None:
            return None
        page = work.page(self._ledger, row, settings, Path(row.path))
        if page is None:
            return None
        attempt = (stored.attempts if stored is not None else 0) + 1
        began = (row.key, step.name, shaping, caller.endpoint.name, Path(row.path))
        self._rows.step_started(*began, attempt, claim)
        usage = Usage()
        log.info("step.started", step=step.name, attempt=attempt, endpoint=caller.endpoint.name)
        try:
            result = Worker({caller.endpoint.name: caller}).run(step, page, usage)
        except (TranscriptionError, DropscribeError) as exc:
            message = getattr(exc, "message", str(exc))
            outage = bool(getattr(exc, "outage", False))
            if outage:  # the endpoint's, never the step's: not counted
                self._rows.step_started(*began, attempt - 1, claim)
            quarantined = not outage and attempt >= caller.endpoint.max_attempts
            wait = delay(attempt, RETRY_CAP, random.random(), getattr(exc, "retry_after", None))  # noqa: S311
            self._counted(caller, step, usage, failed=True)
            self._rows.step_failed(
                row.key,
                step.name,
                shaping,
                message,
                quarantined=quarantined,
                next_at=time.time() + wait,
                tokens=(usage.tokens_in, usage.tokens_out),
                claim=claim,
            )
            if not quarantined:
                self._marks.retry_at((row.path, step.name, shaping), time.monotonic() + wait)
            log.warning(
                "step.failed",
                step=step.name,
                error=message,
                attempt=attempt,
                quarantined=quarantined,
                will_retry=not quarantined,
                retry_in=round(wait, 2),
            )
            return None
        used = (usage.tokens_in, usage.tokens_out)
        self._rows.step_done(row.key, step.name, shaping, result, used, claim)
        self._counted(caller, step, usage, failed=False)
        log.info(
            "step.done",
            step=step.name,
            requests=usage.requests,
            tokens_in=usage.tokens_in,
            tokens_out=usage.tokens_out,
            parts=result.get("parts"),
        )
        return result
