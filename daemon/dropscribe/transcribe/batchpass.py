"""The local engine's batched pass over a recording: its pieces a batch at a time, on
every core (``schedule``), each batch told what was said before it.

Whisper hears 30 s at a time; faster-whisper's sequential ``transcribe`` hands each
window the text of the windows before it as a prompt, and that is where most of its
recall on short sentences comes from (10 minutes of them: 91.4 % with it, 83.7 %
without; names spelt the way they were spelt before). ``BatchedInferencePipeline``
decodes every piece alone. Here each batch is prompted with the last ``PROMPT_WORDS``
words said before it, from batches that are surely done when it starts: batch ``k``
hears what batches ``0 .. k - 2`` said (``schedule.in_order`` with two workers never
starts batch ``k`` before those end; one worker, as the low-memory setting runs, hears
the same), so the prompt depends on the recording alone and the transcript is the same
every run. A folder's own ``prompt`` comes first, as faster-whisper's ``initial_prompt``
does. The low-memory setting makes the pieces between batches, not beside them: their
VAD's buffers and the batch's never add up. Every piece is looked over twice: decoded
again where its answer shows a sign (``redo``), or where its words leave 2 s of its
speech unsaid (``gaps``: word times are asked for, whatever the formats, to find them).
"""

from __future__ import annotations

import itertools
from typing import TYPE_CHECKING, Any

import structlog

from dropscribe.audio.transcode import RATE
from dropscribe.ops import progress
from dropscribe.transcribe import gaps, heap, redo
from dropscribe.transcribe.batched import Windows, decoded, placed
from dropscribe.transcribe.schedule import ahead, batches, in_order

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator
    from pathlib import Path

    from dropscribe.transcribe.batched import Piece

log = structlog.get_logger("dropscribe")

PROMPT_WORDS = 60  # of the text before a batch (measured: 20 and 150 words heard less)
PROMPT_LAG = 2  # batch k is prompted with batches 0 .. k - PROMPT_LAG (at least the workers)

Found = list[tuple[float, Any]]


class Said:
    """What each batch said, by its number, for the prompts of the batches after it."""

    def __init__(self, prompt: str | None, workers: int) -> None:
        self.prompt = prompt  # the folder's own
        self.lag = max(PROMPT_LAG, workers)  # what in_order has surely finished
        self.texts: dict[int, str] = {}

    def before(self, k: int) -> str | None:
        """The prompt of batch ``k``: the folder's prompt, then the last words said in
        the batches done before ``k`` starts."""
        words: list[str] = []
        for j in range(k - self.lag, -1, -1):  # back from the last done, as far as needed
            words[:0] = self.texts.get(j, "").split()
            if len(words) >= PROMPT_WORDS:
                break
        prompt = " ".join(filter(None, [self.prompt, " ".join(words[-PROMPT_WORDS:])]))
        return prompt or None

    def heard(self, k: int, found: Found) -> None:
        self.texts[k] = " ".join(s.text.strip() for _, s in found if s.text.strip())


def transcribed(
    model: Any,
    path: Path,
    batch: int,
    options: dict[str, Any],
    drain: Callable[[Iterable[Any]], Iterator[Any]],
) -> tuple[Found, str | None, float]:
    """``path``'s segments timed in the recording, its language, and its length."""
    windows = Windows(path)
    out: Found = []
    settled = {**options}
    settled["word_timestamps"] = True  # what ``gaps`` looks for unheard speech by
    if settled["language"] is None and not model.model.is_multilingual:
        settled["language"] = "en"  # an English-only model: nothing to find first
    workers = model.dropscribe_workers
    said = Said(settled.pop("initial_prompt", None), workers)

    def looked_over(piece: Piece, heard: Found, asked: dict[str, Any]) -> Found:
        """A piece decoded again where its answer shows a sign (``redo``), or else where
        its words leave speech out (``gaps``)."""
        checked = redo.checked(model, piece, heard, asked, drain)
        return gaps.filled(model, piece, heard, asked, drain) if checked is heard else checked

    def one(item: tuple[int, list[Piece]]) -> tuple[Found, float]:
        k, pieces = item
        asked = {**settled, "initial_prompt": said.before(k)}
        each, language = decoded(model, pieces, asked, batch, drain)
        settled["language"] = settled["language"] or language  # one for the recording
        asked["language"] = settled["language"]
        found = [
            (0.0, placed(piece, at, s))
            for piece, heard in zip(pieces, each, strict=True)
            for at, s in looked_over(piece, heard, asked)
        ]
        said.heard(k, found)
        return found, pieces[-1].place(len(pieces[-1].samples) / RATE, end=True)

    # The VAD and decoding beside the batches; between them in the low-memory setting.
    made = ahead(windows, 0 if heap.small() else batch * workers)
    try:
        queue = enumerate(batches(made, batch, workers))
        if settled["language"] is None:  # the first batch finds it, before the others
            for first in itertools.islice(queue, 1):
                out.extend(one(first)[0])
        for found, until in in_order(one, queue, workers):
            out.extend(found)
            progress.at(until)  # file.progress: everything before it is done
    finally:
        made.close()  # an error or an abort: the thread making pieces stops too
    seconds = windows.samples.count / RATE
    if windows.samples.truncated:
        log.warning(
            "audio.truncated",
            reason=windows.samples.truncated,
            seconds=round(seconds, 3),
            action="transcribed the audio before the damage",
        )
    return out, settled["language"], seconds
