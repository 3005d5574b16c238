"""The local engine's batched path: speech found by VAD, up to 30 s at a time, transcribed
a batch at a time by faster-whisper's ``BatchedInferencePipeline``.

The recording is decoded as a stream and taken ``WINDOW_SECONDS`` at a time, so memory
stays flat whatever its length (faster-whisper's own ``transcribe`` holds the whole
recording, twice over as a spectrogram: 820 MB for twelve minutes). In each window
Silero VAD (which faster-whisper ships) finds the speech, ``VAD_SECONDS`` at a time
(its buffers grow with what it is given); neighbouring speech is gathered into pieces
of at most ``CLIP_SECONDS``, and the window's last piece waits for the next window (it
may go on past the window's end). No piece ever starts or ends inside speech the VAD
heard. Only the pieces of the batch being transcribed are held, whichever windows they
came from.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from dropscribe.audio.transcode import RATE, Samples
from dropscribe.transcribe import heap

if TYPE_CHECKING:
    from collections.abc import Iterator
    from pathlib import Path

    import numpy.typing as npt

WINDOW_SECONDS = 120
VAD_SECONDS = 30
CLIP_SECONDS = 30  # what Whisper hears at once
# Silero's settings as BatchedInferencePipeline uses them: short silences split speech.
MIN_SILENCE_MS = 160


class Windows:
    """The speech of a recording, as pieces to transcribe, in the recording's order."""

    def __init__(self, path: Path) -> None:
        self.samples = Samples(path)
        self.heard = 0.0  # seconds of speech found

    def __iter__(self) -> Iterator[tuple[float, npt.NDArray[np.float32]]]:
        """(the piece's start in seconds, its samples), a window at a time."""
        blocks: list[npt.NDArray[np.int16]] = []
        held = 0
        start = 0  # the first held sample's place in the recording
        for block in self.samples:
            blocks.append(block)
            held += len(block)
            if held >= WINDOW_SECONDS * RATE:
                audio = np.concatenate(blocks)
                pieces = self._pieces(audio)
                # The last piece waits (it may go on); with none, the last second does.
                keep = pieces.pop()[0] if pieces else len(audio) - RATE
                for begin, end in pieces:
                    yield (start + begin) / RATE, _floats(audio[begin:end])
                blocks, held, start = [audio[keep:]], len(audio) - keep, start + keep
        if held:
            audio = np.concatenate(blocks)
            for begin, end in self._pieces(audio):
                yield (start + begin) / RATE, _floats(audio[begin:end])

    def _pieces(self, audio: npt.NDArray[np.int16]) -> list[tuple[int, int]]:
        from faster_whisper.vad import VadOptions, get_speech_timestamps  # noqa: PLC0415

        options = VadOptions(
            max_speech_duration_s=CLIP_SECONDS, min_silence_duration_ms=MIN_SILENCE_MS
        )
        speech: list[tuple[int, int]] = []
        step = VAD_SECONDS * RATE
        for at in range(0, len(audio), step):
            for found in get_speech_timestamps(_floats(audio[at : at + step]), options):
                begin, end = at + found["start"], at + found["end"]
                if speech and begin - speech[-1][1] <= 1:  # one speech across two slices
                    begin = speech.pop()[0]
                speech.append((begin, end))
        heap.release()  # the VAD's buffers
        self.heard += sum(end - begin for begin, end in speech) / RATE
        return gathered(speech, CLIP_SECONDS * RATE)


def gathered(speech: list[tuple[int, int]], longest: int) -> list[tuple[int, int]]:
    """Neighbouring speech joined into pieces of at most ``longest`` samples (speech
    longer than that is cut in it, as Silero's ``max_speech_duration_s`` would)."""
    pieces: list[tuple[int, int]] = []
    for begin, end in speech:
        if pieces and end - pieces[-1][0] <= longest:
            pieces[-1] = (pieces[-1][0], end)
            continue
        at = begin
        while end - at > longest:
            pieces.append((at, at + longest))
            at += longest
        pieces.append((at, end))
    return pieces


def _floats(samples: npt.NDArray[np.int16]) -> npt.NDArray[np.float32]:
    return samples.astype(np.float32) / 32768.0
