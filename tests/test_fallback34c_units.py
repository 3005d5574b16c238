"""Pure pieces of fallback34c: what an endpoint that takes a file cannot give
(jobs/degraded.py), and why a failure passes a file over (transcribe/fallback.py)."""

from __future__ import annotations

import pytest

from dropscribe.errors import OutageError, PassedOver, RetryableError
from dropscribe.jobs import degraded
from dropscribe.transcribe import fallback, models
from dropscribe.vocab.endpoints import Endpoint
from dropscribe.vocab.settings import FolderSettings

BASE = "http://127.0.0.1:9/v1"


def test_speakers_on_an_endpoint_that_labels_none_is_lacking() -> None:
    """speakers: true on groq, or on OpenAI's whisper-1, lacks speakers; on OpenAI's
    diarizing model it does not."""
    settings = FolderSettings(endpoint="e", model="whisper-1", speakers=True)
    for kind, model, lacking in [
        ("groq", "whisper-large-v3-turbo", True),
        ("openai", "whisper-1", True),
        ("openai", "gpt-4o-transcribe-diarize", False),
    ]:
        endpoint = Endpoint(name="e", kind=kind, base_url=BASE)
        one = settings.model_copy(update={"model": model})
        found = degraded.lacking(endpoint, one, models.of(endpoint, model))
        assert ("speakers" in found) is lacking, (kind, model)


def test_times_lack_only_where_this_machine_cannot_time_the_words() -> None:
    """A model that gives no times, for an srt: lacking with align: false, not when the
    words can be timed here or the folder needs no times."""
    endpoint = Endpoint(name="e", kind="openai", base_url=BASE)
    caps = models.Caps(formats=("json",))
    srt = FolderSettings(endpoint="e", model="m", formats=["srt"], align=False)
    assert "align: false" in degraded.lacking(endpoint, srt, caps)["timestamps"]
    txt = srt.model_copy(update={"formats": FolderSettings(formats=["txt"]).formats})
    assert degraded.lacking(endpoint, txt, caps) == {}


def test_a_timeout_passes_the_file_over_as_slow_but_a_patient_turn_waits() -> None:
    """Inside a turn, a request cut at its deadline passes the file over as slow (its
    cause kept); a patient turn (a held endpoint) waits it out as it waits an outage."""
    late = RetryableError("no answer from http://x within 1 s (timeout)")
    with fallback.turn(fallback.Reasons()), pytest.raises(PassedOver) as caught:
        fallback.failed("a", late, slow=True)
    assert caught.value.why == "slow"
    assert caught.value.__cause__ is late
    with fallback.turn(fallback.Reasons(), patient=True):
        fallback.failed("a", late, slow=True)
    with fallback.turn(fallback.Reasons()), pytest.raises(PassedOver) as caught:
        fallback.failed("a", OutageError("cannot connect"), slow=True)
    assert caught.value.why == "down"
