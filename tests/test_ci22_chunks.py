"""CI (session 21): of a recording's chunks uploaded together, the failure named was the
first to fail in time: chunk 2's one run, chunk 1's the next, for the same answers. The
earliest chunk's failure is named now, whichever order the answers came in."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

import pytest

from conftest import patience
from dropscribe.errors import TranscriptionError
from dropscribe.jobs.chunked import Chunker


def run_parallel(failing: set[int], first_to_fail: int) -> tuple[dict[int, Any], str]:
    """``Chunker._parallel`` over four chunks, those in ``failing`` raising, chunk
    ``first_to_fail`` before the others (each other failure waits for it)."""
    failed_first = threading.Event()

    def chunk(_rec: Any, i: int, _settings: Any) -> str:
        if i not in failing:
            return f"text {i}"
        if i == first_to_fail:
            failed_first.set()
        else:
            assert failed_first.wait(patience(10))
        raise TranscriptionError(f"chunk {i + 1} of 4: refused")

    chunker = SimpleNamespace(_chunk=chunk)
    results: dict[int, Any] = {}
    with pytest.raises(TranscriptionError) as raised:
        Chunker._parallel(chunker, SimpleNamespace(settings=None), [0, 1, 2, 3], results, 4)  # type: ignore[arg-type]
    return results, raised.value.message


def test_the_earliest_chunks_failure_is_named_though_a_later_one_failed_first():
    """Chunks 1 and 2 refused, chunk 2's refusal first in time: chunk 1's is raised."""
    results, message = run_parallel({0, 1}, first_to_fail=1)
    assert message == "chunk 1 of 4: refused"
    assert set(results) <= {2, 3}  # those that finished are kept


def test_a_later_chunks_failure_is_named_when_the_earlier_ones_succeed():
    """Only chunk 3 refused: its failure is raised, the transcripts finished kept."""
    results, message = run_parallel({2}, first_to_fail=2)
    assert message == "chunk 3 of 4: refused"
    assert {0: "text 0", 1: "text 1"}.items() <= results.items()
