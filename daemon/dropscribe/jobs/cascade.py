"""Several endpoints per folder (``endpoint: [groq, openai, local]``), the job's side: the
file goes to the first endpoint of the list that takes it. One that cannot (its breaker
open, out of quota, its model gone, down: ``transcribe/fallback.py``), or that answers
nothing for audio with speech, is passed over with ``file.fallback``, naming both
endpoints and why; when none can, the file waits for the first that can again (in
``once``: it ends as with that one endpoint): where it is, holding no worker, when each
said when it can (paused, or over a budget: wake15), else in its worker.

Exactly once across endpoints: before a file's first request to an endpoint, the ledger
commits a ``sending`` row for it (``ledger/sends.py``), ended when the endpoint answers.
A row still ``sending`` when the job starts again is a request that may have reached the
endpoint before this host stopped (killed, or the power gone): a paid endpoint's is not
repeated on another one. The file goes to that endpoint again (``fallback.held``) and
waits for it while it is paused or down, as a folder with one endpoint does; only its
answer refusing the file (out of quota, the model gone, a bad key, nothing heard) sends
the file on down the list, with ``file.fallback`` saying so."""

from __future__ import annotations

import dataclasses
import time
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import (
    Abandoned,
    EmptyAnswer,
    EndpointError,
    EndpointUnreachable,
    EndpointWaits,
    PassedOver,
    PermanentError,
    TranscriptionError,
)
from dropscribe.jobs import degraded, routing, spending
from dropscribe.ledger.sends import DONE, FAILED, SENDING, UNUSABLE
from dropscribe.transcribe import fallback
from dropscribe.vocab import fallbacks

if TYPE_CHECKING:
    import threading

    from dropscribe.audio.probe import Probe
    from dropscribe.jobs.job import Job
    from dropscribe.jobs.plan import Planner
    from dropscribe.ledger.interface import JobLedger
    from dropscribe.transcribe.uploader import Uploader
    from dropscribe.transcript import Transcript

log = structlog.get_logger("dropscribe")

UNPAID = frozenset({"local"})  # kinds no request of which costs anything
RETRY_SECONDS = 1.0  # when no endpoint of the list can take the file: look again after


class Cascade:
    """Sends a job's file to the first endpoint of its folder's list that takes it."""

    def __init__(
        self,
        ledger: JobLedger,
        uploader: Uploader,
        planner: Planner,
        abort: threading.Event,
        *,
        once: bool,
    ) -> None:
        self._ledger = ledger
        self._uploader = uploader
        self._planner = planner
        self._abort = abort
        self._once = once
        self._reasons = fallback.Reasons()
        self._spender = spending.Spender(ledger, uploader)  # budget34
        self._router = routing.Router(ledger, uploader)  # budget34

    def transcribe(self, job: Job, found: Probe) -> Transcript:
        """The file's fresh transcript, from the first endpoint that gives one."""
        settings = job.settings
        chain = fallbacks.chain(
            settings.endpoint, settings.model, settings.fallbacks, settings.models
        )
        if len(chain) == 1:  # budget34: reserved and settled, waits over budget
            send = lambda: self._planner.transcribe(job, found)  # noqa: E731
            return self._spender.alone(job, found, send, once=self._once)
        chain = self._router.routed(job, found, chain)  # budget34: route:
        held = self._held(job, chain)
        if held is not None:
            try:
                return self._turn(job, found, *held, patient=True)
            except (EmptyAnswer, PassedOver) as exc:  # it answered: it refuses the file
                chain = [pair for pair in chain if pair != held]
                why = exc.why if isinstance(exc, PassedOver) else "empty"
                why += " (after a request that may have reached it before dropscribe stopped)"
                self._passed(job, held[0], chain[0][0], why, exc.message)
        return self._down_the_list(job, found, chain)

    def _down_the_list(self, job: Job, found: Probe, chain: list[tuple[str, str]]) -> Transcript:
        told = False  # file.fallback is said on the first way down the list only
        while True:
            last: PassedOver | None = None
            over = 0  # budget34: endpoints passed over for their budget
            beyond = 0  # attack14: ... for a budget too small for the file in any period
            slow: list[PassedOver] = []  # fallback34c: that timed out on this very file
            untils: list[float] = []  # wake15: when each passed over can take files again
            for index, (endpoint, model) in enumerate(chain):
                try:
                    return self._turn(job, found, endpoint, model)
                except PassedOver as exc:
                    last = exc
                    why, message = exc.why, exc.message
                    over += why in {"budget", spending.BEYOND}
                    beyond += why == spending.BEYOND  # attack14
                    slow += [exc] if why == "slow" else []
                    untils += [exc.until] if exc.until is not None else []
                except EmptyAnswer as exc:
                    if index == len(chain) - 1:
                        raise
                    why, message = "empty", exc.message
                except EndpointError as exc:  # once: found unusable by an earlier file
                    if index == len(chain) - 1:
                        raise
                    why, message = "ruled out", exc.message
                    last = PassedOver(endpoint, why, message, sent=False)
                if index < len(chain) - 1 and not told:
                    self._passed(job, endpoint, chain[index + 1][0], why, message)
            told = True
            self._none_took(last, len(chain), over, beyond, slow, untils)
            log.warning(
                "fallback.exhausted",
                endpoints=[name for name, _ in chain],
                action=f"no endpoint of the list can take the file: it waits, and each is"
                f" tried again from the first every {RETRY_SECONDS:g} s",
            )
            if self._abort.wait(RETRY_SECONDS):
                raise Abandoned

    def _none_took(
        self,
        last: PassedOver | None,
        endpoints: int,
        over: int,
        beyond: int,
        slow: list[PassedOver],
        untils: list[float],
    ) -> None:
        """How the file ends when no endpoint of the list took it this time round; back
        in the caller (it waits in this worker, then tries the list again) only while
        endpoints are down, or paused for no longer than ``RETRY_SECONDS``. wake15: when
        every endpoint said when it can take files again (``untils``: paused, or over a
        budget that turns), the file waits where it is, holding no worker, until the
        first of them."""
        if last is not None and beyond == endpoints:  # attack14: no period takes it
            raise PermanentError(last.message)
        self._too_slow(slow, endpoints)
        if self._once:  # nothing waits in once: the file ends as with one endpoint
            assert last is not None  # every other way out of the loop returned or raised
            if last.why.startswith(("down", "paused (down", "budget", "slow", "paused (slow")):
                raise EndpointUnreachable(last.message)
            raise EndpointError(last.message)
        soonest = min(untils) if len(untils) == endpoints else None
        if last is not None and over == endpoints:  # every budget reached, until a period
            # turns: the file waits where it is, holding no worker (other folders need them)
            said = f"waiting: every endpoint's budget: {last.message}"
            raise EndpointWaits(said, until=soonest)
        if last is not None and soonest is not None and soonest - time.time() > RETRY_SECONDS:
            said = f"waiting: no endpoint of the list can take it now (the last: {last})"
            raise EndpointWaits(said, until=soonest)

    @staticmethod
    def _too_slow(slow: list[PassedOver], endpoints: int) -> None:
        """fallback34c: every endpoint of the list timed out on this file, one after the
        other: the file may be the cause (too long for every ``timeout:``), so it ends as
        with one endpoint after its last timeout, not waiting (and pausing each) forever."""
        if len(slow) < endpoints or not isinstance(slow[-1].__cause__, TranscriptionError):
            return
        failure = slow[-1].__cause__
        failure.attempts = len(slow)
        raise failure

    def _turn(
        self, job: Job, found: Probe, endpoint: str, model: str, *, patient: bool = False
    ) -> Transcript:
        """``_sent``; the job's sidecars then name the model that transcribed the file
        (``{model}``, the Markdown front matter), not the first of the list."""
        answer = self._sent(job, found, endpoint, model, patient=patient)
        job.settings = job.settings.model_copy(update={"model": model})
        return answer

    def _sent(
        self, job: Job, found: Probe, endpoint: str, model: str, *, patient: bool = False
    ) -> Transcript:
        """The file sent to ``endpoint`` with ``model``; ``PassedOver`` when it cannot take
        it (``patient``: only when it refuses it, not while it is paused or down)."""
        _, key = job.known()
        settings = job.settings.model_copy(update={"endpoint": endpoint, "model": model})
        lacks = degraded.lacking(  # fallback34c: what this endpoint cannot give
            self._uploader.client(endpoint).endpoint, settings, self._uploader.caps(endpoint, model)
        )
        if "speakers" in lacks:
            settings = degraded.unspoken(settings)
        self._ledger.record_send(key, endpoint, model, job.path, SENDING, None)
        one = dataclasses.replace(job, settings=settings)
        try:
            with fallback.turn(self._reasons, patient=patient):
                send = lambda: self._planner.transcribe(one, found)  # noqa: E731
                answer = self._spender.paid(one, found, endpoint, model, send)  # budget34
        except PassedOver as exc:
            self._ledger.record_send(
                key, endpoint, model, job.path, UNUSABLE, f"{exc.why}: {exc.message}"
            )
            raise
        except EmptyAnswer as exc:
            self._ledger.record_send(key, endpoint, model, job.path, UNUSABLE, f"empty: {exc}")
            raise
        except TranscriptionError as exc:  # answered (or never sent): not in flight
            self._ledger.record_send(key, endpoint, model, job.path, FAILED, exc.message)
            raise
        note = "; ".join(f"{what}: {why}" for what, why in lacks.items()) or None
        self._ledger.record_send(key, endpoint, model, job.path, DONE, note and f"degraded: {note}")
        if note is not None:
            log.warning("file.degraded", endpoint=endpoint, model=model, what=list(lacks), why=note)
        return answer

    def reused(self, job: Job) -> None:
        """fallback34c: a transcript had from the ledger (after a restart, or for a copy of
        the content) names in its sidecars the model that made it, not the list's first."""
        _, key = job.known()
        done = [row for row in self._ledger.sends(key) if row.state == DONE]
        if job.settings.fallbacks and done:
            job.settings = job.settings.model_copy(update={"model": done[-1].model})

    def max_attempts(self, job: Job) -> int:
        """fallback34c: the attempts a job has: those of the endpoint of its list it was
        last sent to (the first's before any)."""
        names = [job.settings.endpoint, *job.settings.fallbacks]
        sent = [row.endpoint for row in self._ledger.sends(job.key)] if job.key else []
        name = next((name for name in reversed(sent) if name in names), names[0])
        return self._uploader.client(name).endpoint.max_attempts

    def _held(self, job: Job, chain: list[tuple[str, str]]) -> tuple[str, str] | None:
        """The paid endpoint a request of this job may have reached before this host
        stopped (its row still ``sending``), if any: the file goes there again."""
        _, key = job.known()
        sending = {row.endpoint for row in self._ledger.sends(key) if row.state == SENDING}
        for endpoint, model in chain:
            if endpoint in sending and self._uploader.client(endpoint).endpoint.kind not in UNPAID:
                log.warning(
                    "fallback.held",
                    endpoint=endpoint,
                    reason="a request of this file may have reached it before dropscribe stopped",
                    action="sent to it again, not to another endpoint, so that it is not"
                    " paid for twice; while it is paused or down, the file waits for it",
                )
                return endpoint, model
        return None

    @staticmethod
    def _passed(job: Job, endpoint: str, to: str, why: str, message: str) -> None:
        log.warning(
            "file.fallback",
            endpoint=endpoint,
            to=to,
            reason=why,
            error=message,
            model=dict(job.settings.models).get(endpoint, job.settings.model),
        )
