"""review21: an answer compressed more than once is refused unread. answers21 decodes a
compressed answer in 256-byte slices, each inflating to 264 kB at most; but httpx decodes
every coding the answer names (``Content-Encoding: gzip, gzip``), and a slice of the outer
one inflates to 264 kB of the inner one, which inflates to 272 MB in one piece: the cap
held nothing."""

from __future__ import annotations

import gzip
import re
import zlib

import pytest

from conftest import make_wav
from fakeapi import Reply
from test_answers21_bytes import HOSTILE, LEAST, Counted, counted, once, quarantined

pytestmark = pytest.mark.slow

__all__ = ["counted"]  # the fixture, from answers21's tests


@pytest.mark.parametrize("coding", ["gzip, gzip", "gzip, deflate"])
def test_an_answer_compressed_twice_is_refused_before_it_is_inflated(counted, coding):
    """A 1-s recording answered with 16 MB of JSON compressed twice: refused naming the
    codings, after no more than one slice's worth of it was inflated."""
    setup = counted
    api: Counted = setup.api  # type: ignore[assignment]
    inner = gzip.compress(HOSTILE)
    outer = gzip.compress(inner) if coding == "gzip, gzip" else zlib.compress(inner)
    api.script.append(Reply(200, raw=outer, headers={"Content-Encoding": coding}))
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    error = quarantined(setup, once(setup))
    read = re.search(r"is at least ([\d,]+) bytes", error)
    assert read is None or int(read[1].replace(",", "")) < LEAST + 1032 * 256, error
    assert f"Content-Encoding: {coding}" in error, error


@pytest.mark.parametrize("coding", ["br", "zstd", "BR"])
def test_an_answer_in_a_coding_not_asked_for_is_refused_unread(counted, coding):
    """Uploads ask for gzip and deflate only; an answer compressed as brotli or zstd
    (whose bytes inflate far past a slice's cap where their packages are installed) is
    refused, naming the coding and what was asked for."""
    setup = counted
    api: Counted = setup.api  # type: ignore[assignment]
    api.script.append(Reply(200, raw=gzip.compress(HOSTILE), headers={"Content-Encoding": coding}))
    make_wav(setup.inbox / "a.wav", seconds=1.0)
    error = quarantined(setup, once(setup))
    assert f"compressed as {coding.lower()}, which was not asked for" in error, error
    assert "Accept-Encoding: gzip, deflate" in error, error
    assert api.uploads[0].headers.get("accept-encoding") == "gzip, deflate"
