"""One step of one transcript, done on a chat endpoint: a summary (map -> reduce over
parts that fit the model's context) or a translation (numbered batches of cues, each
answer checked, re-asked smaller when it is not whole). ``finish_reason: length`` is
never taken as a complete answer: the part or batch goes again, smaller."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe import names
from dropscribe.errors import ContextTooLong, PermanentError, RetryableError
from dropscribe.outputs import glossary, render
from dropscribe.steps import prompts
from dropscribe.transcript import Transcript
from dropscribe.vocab.settings import Format

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.ledger.interface import FileRow, Stepping
    from dropscribe.outputs.render import Page
    from dropscribe.steps.calls import Caller
    from dropscribe.vocab.settings import FolderSettings
    from dropscribe.vocab.steps import Step

log = structlog.get_logger("dropscribe")

DEFAULT_CONTEXT = 128_000  # tokens, until a refusal names the model's own
SUMMARY_TOKENS = 2_000  # the longest summary (and part's notes) asked for
BATCH_TOKENS = 2_400  # a translation batch, at most (fewer requests, less sent twice)
OVERHEAD = 400  # the instructions and the answer's numbering, in tokens
CONTEXT_CUES = 2  # cues before a batch sent as context
LIMIT = "limit"


@dataclass
class Usage:
    tokens_in: int = 0
    tokens_out: int = 0
    requests: int = 0
    notes: list[str] = field(default_factory=list)


def page(ledger: Stepping, row: FileRow, settings: FolderSettings, source: Path) -> Page | None:
    """A done file's stored transcript as its sidecars show it (None: it is gone)."""
    job = ledger.job(row.key)
    if job is None or job.result is None:
        return None
    recorded = None
    if Format.MD in settings.formats:
        with contextlib.suppress(OSError):
            recorded = datetime.fromtimestamp(source.stat().st_mtime).astimezone()
    return render.Page(
        glossary.applied(  # as the transcript's sidecars show it (the chat sees it so)
            Transcript.from_json(job.result, job.request_id), settings.glossary
        ),
        task=settings.task.value,
        rules=settings.subtitles,
        source=names.text(source.name),
        model=settings.model,
        recorded=recorded,
    )


class Worker:
    """Runs steps with the callers of the chat endpoints."""

    def __init__(self, callers: dict[str, Caller]) -> None:
        self.callers = callers

    def run(self, step: Step, page: Page, usage: Usage) -> dict[str, Any]:
        caller = self.callers.get(step.chat.endpoint)
        if caller is None:
            raise PermanentError(f"no chat endpoint {step.chat.endpoint!r}")
        if step.name == "summary":
            return self._summary(caller, step, page, usage)
        return self._translation(caller, step, page, usage)

    # ------------------------------------------------------------ the calls

    def _ask(
        self, caller: Caller, step: Step, messages: list[dict[str, str]], out: int, usage: Usage
    ) -> tuple[str, bool]:
        """(answer, complete); a refusal naming the context length is learned and raised."""
        try:
            answer = caller.complete(step.chat.model, messages, out)
        except ContextTooLong as exc:
            if exc.tokens:
                self.learn_context(caller, step, exc.tokens)
            raise
        usage.tokens_in += answer.tokens_in
        usage.tokens_out += answer.tokens_out
        usage.requests += 1
        if answer.finish_reason == "length":
            log.info("step.cut_short", step=step.name, finish_reason="length", max_tokens=out)
        return answer.text, answer.finish_reason != "length"

    def context(self, caller: Caller, step: Step) -> int:
        learned = [
            int(value)
            for param, value, verdict in caller.ledger.capabilities(
                caller.endpoint.name, step.chat.model
            )
            if param == "context_tokens" and verdict == LIMIT and value.isdigit()
        ]
        return min([*learned, step.chat.context_tokens or DEFAULT_CONTEXT])

    def learn_context(self, caller: Caller, step: Step, tokens: int) -> None:
        caller.ledger.record_capability(
            caller.endpoint.name, step.chat.model, "context_tokens", str(tokens), LIMIT, None
        )
        log.info(
            "chat.learned",
            endpoint=caller.endpoint.name,
            model=step.chat.model,
            context_tokens=tokens,
        )

    # ------------------------------------------------------------ summary

    def _summary(self, caller: Caller, step: Step, page: Page, usage: Usage) -> dict[str, Any]:
        paragraphs = [p for p in page.paragraphs if p.strip()]
        for _ in range(4):  # a context learned, or a part cut short: cut again
            budget = max(200, (self.context(caller, step) - SUMMARY_TOKENS - OVERHEAD) * 4 // 5)
            try:
                return self._summarised(caller, step, paragraphs, budget, usage)
            except ContextTooLong:
                continue
        raise PermanentError("the transcript does not fit the model's context, even in parts")

    def _summarised(
        self, caller: Caller, step: Step, paragraphs: list[str], budget: int, usage: Usage
    ) -> dict[str, Any]:
        pieces = prompts.parts(paragraphs, budget)
        if len(pieces) == 1:
            messages = prompts.summary_messages(pieces[0], step.prompt, step.language)
            text, whole = self._ask(caller, step, messages, SUMMARY_TOKENS, usage)
            if whole:
                return {"markdown": text.strip(), "parts": 1}
            pieces = prompts.parts(paragraphs, max(100, budget // 2))
            if len(pieces) == 1:
                raise RetryableError("the summary was cut short (finish_reason: length)")
        notes = []
        queue = list(pieces)
        while queue:  # map: each part's notes; a part cut short is sent again in halves
            part = queue.pop(0)
            messages = prompts.summary_messages(part, None, None, notes=True)
            text, whole = self._ask(caller, step, messages, SUMMARY_TOKENS, usage)
            if whole:
                notes.append(text.strip())
                continue
            smaller = prompts.parts(part.split("\n\n"), max(50, prompts.tokens(part) // 2))
            if len(smaller) < 2:
                raise RetryableError("a part's notes were cut short (finish_reason: length)")
            queue[:0] = smaller
        combined = (
            prompts.COMBINE
            + "\n\n"
            + "\n\n".join(f"Part {n}:\n{note}" for n, note in enumerate(notes, 1))
        )
        messages = prompts.summary_messages(combined, step.prompt, step.language)
        text, whole = self._ask(caller, step, messages, SUMMARY_TOKENS, usage)
        if not whole:
            raise RetryableError("the summary was cut short (finish_reason: length)")
        return {"markdown": text.strip(), "parts": len(notes)}

    # ------------------------------------------------------------ translation

    def _translation(self, caller: Caller, step: Step, page: Page, usage: Usage) -> dict[str, Any]:
        language = step.language or ""
        subtitles = page.subtitles
        texts = [cue.text for cue in subtitles]
        budget = min(BATCH_TOKENS, max(100, (self.context(caller, step) - OVERHEAD) // 3))
        queue = prompts.batches(texts, budget)
        done: dict[int, str] = {}
        while queue:
            batch = queue.pop(0)
            context = texts[max(0, batch.first - CONTEXT_CUES) : batch.first]
            messages = prompts.translate_messages(batch, context, language)
            out = 2 * sum(prompts.tokens(t) for t in batch.texts) + 8 * len(batch.texts) + 50
            try:
                text, whole = self._ask(caller, step, messages, out, usage)
            except ContextTooLong:
                text, whole = "", False
            got = prompts.numbered(text, batch) if whole else None
            if got is None:
                if len(batch.texts) == 1:
                    raise RetryableError(
                        f"cue {batch.first + 1} came back incomplete or unnumbered"
                    )
                log.info(
                    "step.reasked", step=step.name, first=batch.first + 1, cues=len(batch.texts)
                )
                queue[:0] = prompts.halves(batch)
                continue
            done.update({batch.first + n: t for n, t in enumerate(got)})
        cues = [
            [cue.start, cue.end, done[n], cue.speaker, cue.turn] for n, cue in enumerate(subtitles)
        ]
        return {"language": language, "cues": cues}
