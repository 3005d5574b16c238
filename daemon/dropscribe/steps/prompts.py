"""Pure: what a step asks a chat model, and what its answer must be to be used.

A translation goes cue by cue, in numbered batches (``[12] text``), with the cues just
before the batch as context that is not to be translated: every cue keeps its times,
and an answer is used only when it has each of the batch's numbers once, in order.
A summary of a transcript longer than the model's context is made from parts (map), each
part's notes combined in one answer (reduce)."""

from __future__ import annotations

import re
from dataclasses import dataclass

CHARS_PER_TOKEN = 3  # a cautious guess for any language; a refusal names the truth
NUMBERED = re.compile(r"^\s*\[(\d{1,6})\]\s?(.*)$")
SECTIONS = ("Summary", "Key points", "Decisions", "Action items")

SUMMARY_PROMPT = (
    "You summarise meeting and recording transcripts. Answer in Markdown, in the"
    " transcript's language unless told otherwise: a first line '# ' with a short title,"
    " then the sections '## Summary', '## Key points', '## Decisions' and '## Action items'"
    " (each action item with its owner and date where the transcript says them; 'None'"
    " where there are none). Use only what the transcript says."
)
NOTES_PROMPT = (
    "You take notes on one part of a long transcript: what was said, every decision and"
    " every action item (owner, date), as short Markdown bullet points. Nothing else."
)
COMBINE = "Here are notes on consecutive parts of one transcript; summarise the whole."


def tokens(text: str) -> int:
    """A cautious estimate of the tokens ``text`` takes."""
    return len(text) // CHARS_PER_TOKEN + 1


def summary_messages(
    text: str, prompt: str | None, language: str | None, *, notes: bool = False
) -> list[dict[str, str]]:
    system = NOTES_PROMPT if notes else (prompt or SUMMARY_PROMPT)
    if language and not notes:
        system += f"\nWrite in the language with the code {language}."
    return [{"role": "system", "content": system}, {"role": "user", "content": text}]


def parts(paragraphs: list[str], budget: int) -> list[str]:
    """The transcript cut at paragraphs into parts of at most ``budget`` tokens (a
    paragraph longer than that alone is cut at words)."""
    out: list[str] = []
    current: list[str] = []
    size = 0
    for para in (p for text in paragraphs for p in _fitting(text, budget)):
        cost = tokens(para)
        if current and size + cost > budget:
            out.append("\n\n".join(current))
            current, size = [], 0
        current.append(para)
        size += cost
    if current:
        out.append("\n\n".join(current))
    return out


def _fitting(text: str, budget: int) -> list[str]:
    if tokens(text) <= budget:
        return [text]
    words, out, line = text.split(), [], ""
    for word in words:
        if line and tokens(line + " " + word) > budget:
            out.append(line)
            line = ""
        line = f"{line} {word}" if line else word
    return [*out, line] if line else out


def sections(answer: str) -> str:
    """A summary's sections as the md note shows them (its title line left out)."""
    lines = answer.strip().splitlines()
    if lines and lines[0].startswith("# "):
        lines = lines[1:]
    return "\n".join(lines).strip()


# ---------------------------------------------------------------- translation


@dataclass(frozen=True)
class Batch:
    first: int  # the index of its first cue
    texts: tuple[str, ...]


def translate_messages(batch: Batch, context: list[str], language: str) -> list[dict[str, str]]:
    """The request for one batch: the rules, then the context and the numbered lines."""
    system = (
        f"Translate subtitles into the language with the code {language}. Each line to"
        " translate starts with its number in brackets, such as [12]. Answer with exactly"
        " those numbers, each once, in order, one line each: [number] translation. Never"
        " merge or split lines. Lines under 'Context' are earlier subtitles: do not"
        " translate them."
    )
    body = ""
    if context:
        body += "Context:\n" + "\n".join(_one_line(t) for t in context) + "\n\n"
    body += "Translate:\n" + "\n".join(
        f"[{batch.first + n + 1}] {_one_line(t)}" for n, t in enumerate(batch.texts)
    )
    return [{"role": "system", "content": system}, {"role": "user", "content": body}]


def batches(texts: list[str], budget: int) -> list[Batch]:
    """Cues in consecutive batches of at most ``budget`` tokens each (one cue at least)."""
    out: list[Batch] = []
    first, size = 0, 0
    for n, text in enumerate(texts):
        cost = tokens(text) + 3
        if n > first and size + cost > budget:
            out.append(Batch(first, tuple(texts[first:n])))
            first, size = n, 0
        size += cost
    if first < len(texts):
        out.append(Batch(first, tuple(texts[first:])))
    return out


def halves(batch: Batch) -> list[Batch]:
    half = len(batch.texts) // 2
    return [
        Batch(batch.first, batch.texts[:half]),
        Batch(batch.first + half, batch.texts[half:]),
    ]


def numbered(answer: str, batch: Batch) -> list[str] | None:
    """The batch's translations in order, or None unless the answer has each of its
    numbers exactly once, in order (and nothing numbered besides)."""
    found: list[tuple[int, str]] = []
    for line in answer.splitlines():
        if match := NUMBERED.match(line):
            found.append((int(match.group(1)), match.group(2).strip()))
        elif found and line.strip():  # a line that goes on: the translation wrapped
            number, text = found[-1]
            found[-1] = (number, f"{text} {line.strip()}")
    wanted = list(range(batch.first + 1, batch.first + len(batch.texts) + 1))
    if [n for n, _ in found] != wanted or any(not t for _, t in found):
        return None
    return [t for _, t in found]


def _one_line(text: str) -> str:
    return " ".join(text.split())
