"""Pure: a Transcript -> the bytes of each sidecar format.

What people read (txt, srt, vtt, lrc, tsv, md) is rendered from the transcript without
the segments ``guard.trim`` takes for invented; json and verbose_json are the engine's
full answer. txt is one paragraph per line with a blank line between paragraphs, so it
reads as a document and stays easy to grep; a paragraph ends at a pause of
``subtitles.paragraph_seconds`` between two words (or two segments, where the engine
gave no word times), where the speaker changes, or at the first sentence end after
``PARAGRAPH_CHARS``: whatever the engine's segment sizes. tsv rows are the engine's
segments where each is the size of a cue, else cue-sized runs of words cut as the cues
are (at sentence ends where near), so a 30-s segment is not one row.
"""

from __future__ import annotations

import json
import re
from dataclasses import replace
from functools import cached_property
from typing import TYPE_CHECKING, Any

import yaml

from dropscribe import markup
from dropscribe.outputs import cues, guard
from dropscribe.vocab.settings import Format, SubtitleRules

if TYPE_CHECKING:
    from collections.abc import Iterable, Sequence
    from datetime import datetime

    from dropscribe.transcript import Segment, Transcript

PARAGRAPH_CHARS = 600  # a paragraph grows to about this before a sentence end closes it
SENTENCE = re.compile(f"(?<=[{cues.STOPS}])\\s+")
# What a subtitle player reads as structure in srt text: an arrow (a run of dashes looked
# at once, from its start); an HTML-like tag; an ASS override such as {\an8} (moves the
# cue to the top in VLC, mpv and ffmpeg).
SRT_MARKUP = re.compile(r"(?<!-)-{2,}>|</?[A-Za-z]|\{\\")
LRC_BRACKETS = str.maketrans("[]<>", "()\u2039\u203a")
# Markdown: what starts a block (at the start of a paragraph), and inline markup.
MARKDOWN_BLOCK = re.compile(r"^(\d*)([#>+~.)-])")  # escaped: 1\. one, \# not a heading
MARKDOWN_INLINE = re.compile(r"[\\`*_\[\]<&]")


def clock(seconds: float, sep: str) -> str:
    millis = max(0, round(seconds * 1000))
    hours, millis = divmod(millis, 3_600_000)
    minutes, millis = divmod(millis, 60_000)
    secs, millis = divmod(millis, 1000)
    return f"{hours:02d}:{minutes:02d}:{secs:02d}{sep}{millis:03d}"


class Page:
    """One transcript as its sidecars show it; what several formats share is built once."""

    def __init__(
        self,
        transcript: Transcript,
        *,
        task: str = "transcribe",
        rules: SubtitleRules | None = None,
        source: str = "",
        model: str = "",
        recorded: datetime | None = None,
    ) -> None:
        self.full = transcript
        self.shown, self.dropped = guard.trim(transcript)
        self.task = task
        self.rules = rules or SubtitleRules()
        self.source = source
        self.model = model
        self.recorded = recorded

    def render(self, fmt: Format) -> bytes:
        match fmt:
            case Format.TXT:
                text = "\n\n".join(self.paragraphs) + "\n"
            case Format.JSON:
                text = _json(self.plain_json())
            case Format.VERBOSE_JSON:
                text = _json({"task": self.task, **self.full.to_json()})
            case Format.SRT:
                text = self.srt()
            case Format.VTT:
                text = self.vtt()
            case Format.LRC:
                text = self.lrc()
            case Format.TSV:
                text = self.tsv()
            case Format.MD:
                text = self.md()
        return text.encode("utf-8")

    @cached_property
    def subtitles(self) -> list[cues.Cue]:
        quiet = markup.quiet(self.shown)
        if quiet is self.shown:  # no sound events: the cues tsv cuts too, cut once
            return cues.timed(self.runs, self.rules)
        return cues.build(cues.tokens(quiet), self.rules)

    @cached_property
    def words(self) -> list[cues.Token]:
        """The shown words, timed by the engine; by their characters where it gave no
        word times, or words that leave out some of its segments' text."""
        shown = self.shown
        if shown.words and shown.segments:
            said = _letters(w["word"] for w in shown.words)
            if said != _letters(s["text"] for s in shown.segments):
                shown = replace(shown, words=())
        return cues.tokens(shown)

    @cached_property
    def runs(self) -> list[tuple[Sequence[cues.Token], int]]:
        """The shown words cut as cues."""
        return cues.runs(self.words, self.rules)

    @cached_property
    def paragraphs(self) -> list[str]:
        """The text as paragraphs, each one line; with speakers, each turn starts with a
        name (``A: …``)."""
        return [f"{_line(who)}: {_line(text)}" if who else _line(text) for who, text in self.turns]

    @cached_property
    def turns(self) -> list[tuple[str | None, str]]:
        """Paragraphs, at pauses between words, at each change of speaker, else by
        length: (the speaker, where their turn begins; the text)."""
        shown = self.shown
        if not shown.segments and not shown.words:
            return [(None, p) for p in _by_length(SENTENCE.split(shown.text.strip()), " ")]
        words = self.words
        out: list[tuple[str | None, str]] = []
        first = 0
        for n in range(1, len(words) + 1):
            if n < len(words):
                before, after = words[n - 1], words[n]
                pause = after.start - before.end >= self.rules.paragraph_seconds
                if not pause and after.speaker == before.speaker:
                    continue
            who = words[first].speaker
            turn = who is not None and (first == 0 or words[first - 1].speaker != who)
            out += [
                (who if turn and i == 0 else None, p)
                for i, p in enumerate(_sentenced(words[first:n]))
            ]
            first = n
        return out

    def plain_json(self) -> dict[str, Any]:
        """json: the text, with speakers who said which part when, and whether the
        recording was cut short."""
        data: dict[str, Any] = {"text": self.full.text}
        if self.full.speakers:
            data["segments"] = [
                {
                    "start": s["start"],
                    "end": s["end"],
                    "speaker": s.get("speaker"),
                    "text": s["text"],
                }
                for s in self.full.segments
            ]
        if self.full.cut_short is not None:  # short18: the recording held less than it said
            data["cut_short"] = self.full.cut_short.to_json()
        return data

    def srt(self) -> str:
        """Numbered cues; where the speaker changes, the cue starts with their name."""
        blocks = [
            f"{n}\n{clock(c.start, ',')} --> {clock(c.end, ',')}\n{_srt_text(c.label, c.lines)}\n"
            for n, c in enumerate(self.subtitles, 1)
        ]
        return "\n".join(blocks)

    def vtt(self) -> str:
        """WebVTT; every cue with a speaker in a voice span (``<v A>…</v>``)."""
        blocks = []
        for c in self.subtitles:
            text = _vtt_text(c.lines)
            if c.speaker:
                text = f"<v {_vtt_text((c.speaker,))}>{text}</v>"  # one line: _vtt_text
            blocks.append(f"{clock(c.start, '.')} --> {clock(c.end, '.')}\n{text}\n")
        return "WEBVTT\n\n" + "\n".join(blocks)

    def lrc(self) -> str:
        """Lyrics-style lines, one per cue; an empty stamped line where a silence begins."""
        out = []
        for n, cue in enumerate(self.subtitles):
            out.append(f"[{_lrc_clock(cue.start)}]{_lrc_text(cue.label + cue.text)}")
            following = self.subtitles[n + 1].start if n + 1 < len(self.subtitles) else None
            if following is None or following - cue.end >= cues.PAUSE_BREAK:
                out.append(f"[{_lrc_clock(cue.end)}]")
        return "".join(line + "\n" for line in out)

    def tsv(self) -> str:
        """start, end (milliseconds) and text: a row per segment, as whisper writes it,
        where each segment is the size of a cue; else a row per cue-sized run of words."""
        rows = [(s["start"], s["end"], s.get("speaker"), s["text"]) for s in self.shown.segments]
        if not rows or not all(self._cue_sized(s) for s in self.shown.segments):
            rows = [
                (run[0].start, run[-1].end, run[0].speaker, _joined(run)) for run, _ in self.runs
            ]
        named = self.shown.speakers
        lines = ["start\tend\tspeaker\ttext" if named else "start\tend\ttext"]
        lines += [
            f"{round(a * 1000)}\t{round(b * 1000)}\t"
            + (f"{_line(who or '')}\t" if named else "")
            + _line(t)
            for a, b, who, t in rows
            if t.strip()
        ]
        return "\n".join(lines) + "\n"

    def _cue_sized(self, segment: Segment) -> bool:
        """Whether a segment is no longer than a cue may be, in seconds and characters."""
        rules = self.rules
        characters = len(_line(segment["text"]))
        return (
            segment["end"] - segment["start"] <= rules.max_seconds
            and characters <= rules.line_length * rules.lines
        )

    def md(self) -> str:
        """A Markdown note: YAML front matter, the file's name as the title, paragraphs."""
        meta: dict[str, Any] = {"source": self.source}
        if self.recorded is not None:
            meta["date"] = self.recorded.isoformat(timespec="seconds")
        if self.full.duration is not None:
            meta["duration"] = clock(self.full.duration, ".")[:8]
        meta["language"] = self.full.language
        meta["model"] = self.model
        front = yaml.safe_dump(meta, sort_keys=False, allow_unicode=True, width=10_000)
        title = self.source.rsplit(".", 1)[0] or "Transcript"
        body = "\n\n".join(
            f"**{_markdown_safe(who)}:** {_markdown_safe(text)}" if who else _markdown_safe(text)
            for who, text in self.turns
        )
        return f"---\n{front}---\n\n# {_markdown_safe(title)}\n\n{body}\n"


def _by_length(pieces: list[str], glue: str) -> list[str]:
    """Pieces (sentences or segments) joined into paragraphs of about PARAGRAPH_CHARS,
    each closed at a sentence end once it is that long (joined once: a paragraph that
    never meets a sentence end costs its length, not its length for every piece)."""
    out: list[str] = []
    current: list[str] = []
    length = 0
    for piece in pieces:
        length += len(glue) * bool(current) + len(piece)
        current.append(piece)
        if length >= PARAGRAPH_CHARS and cues.SENTENCE_END.search(piece):
            out.append(glue.join(current))
            current, length = [], 0
    if current:
        out.append(glue.join(current))
    return out


def _sentenced(words: Sequence[cues.Token]) -> list[str]:
    """Words joined into paragraphs of about PARAGRAPH_CHARS, each closed at the first
    sentence end once it is that long."""
    out: list[str] = []
    first = length = 0
    for n, word in enumerate(words):
        length += len(word.text) + (0 if word.glued or n == first else 1)
        if length >= PARAGRAPH_CHARS and cues.SENTENCE_END.search(word.text):
            out.append(_joined(words[first : n + 1]))
            first, length = n + 1, 0
    if first < len(words):
        out.append(_joined(words[first:]))
    return out


def _joined(words: Sequence[cues.Token]) -> str:
    """Words as written: a space between them, none before a glued one."""
    return "".join(("" if n == 0 or w.glued else " ") + w.text for n, w in enumerate(words))


def _letters(texts: Iterable[str]) -> str:
    """The letters and digits of ``texts``, in lower case: what two spellings share."""
    return "".join(c for text in texts for c in text.lower() if c.isalnum())


def _line(text: str) -> str:
    """``text`` on one line: every run of whitespace (newlines, tabs) one space."""
    return " ".join(text.split())


def _srt_text(label: str, lines: tuple[str, ...]) -> str:
    """A cue's text that cannot end the cue early or be read as markup: each line one
    line (no blank line), no arrow (``-->``, ``--->``), no tag (``<b>``, ``{\\an8}``)."""
    lines = (label + lines[0], *lines[1:]) if lines else (label,)
    return "\n".join(SRT_MARKUP.sub(_srt_neutral, _line(line)) for line in lines)


def _srt_neutral(found: re.Match[str]) -> str:
    mark = found.group()
    return "->" if mark.endswith(">") else {"<": "\u2039", "{": "("}[mark[0]] + mark[1:]


def _vtt_text(lines: tuple[str, ...]) -> str:
    """Cue text as WebVTT reads it: &, < and > escaped (so no arrow and no tag), each
    line one line (no blank line)."""
    escaped = (
        _line(line).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
        for line in lines
    )
    return "\n".join(escaped)


def _lrc_text(text: str) -> str:
    """A lyric line's text: one line, with no bracket a player would take for a time or
    a tag (``[00:01.00]``, ``[ar:…]``, enhanced LRC's ``<00:01.00>``)."""
    return _line(text).translate(LRC_BRACKETS)


def _lrc_clock(seconds: float) -> str:
    centis = max(0, round(seconds * 100))
    minutes, centis = divmod(centis, 6000)
    return f"{minutes:02d}:{centis // 100:02d}.{centis % 100:02d}"


def _markdown_safe(text: str) -> str:
    """Text that Markdown shows as written, on one line: no heading, list, quote, fence
    or table where it begins; no emphasis, link, code or HTML anywhere."""
    text = MARKDOWN_INLINE.sub(r"\\\g<0>", _line(text))
    return MARKDOWN_BLOCK.sub(r"\1\\\2", text)


def _json(data: dict[str, Any]) -> str:
    return json.dumps(data, ensure_ascii=False, indent=2) + "\n"


def render(transcript: Transcript, fmt: Format, task: str = "transcribe") -> bytes:
    """One format of a transcript with the default rules (``Page`` for the rest)."""
    return Page(transcript, task=task).render(fmt)
