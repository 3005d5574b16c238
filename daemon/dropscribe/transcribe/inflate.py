"""A compressed answer's bytes, decoded so that what they inflate to is counted as it comes:
in slices (``Sliced``), and compressed once at most (``once``). ``http.py`` reads answers
through them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from dropscribe.errors import PermanentError

if TYPE_CHECKING:
    from collections.abc import Iterator


class Sliced(httpx.SyncByteStream):
    """A compressed answer's raw bytes in slices of ``size``: zlib inflates a byte to
    1,032 at most, so each slice's decoded bytes are counted before they pass 264 kB
    (a 64 KiB read of a gzip bomb was 64 MiB in one piece)."""

    def __init__(self, inner: Any, size: int = 256) -> None:
        self._inner = inner
        self._size = size

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._inner:
            for start in range(0, len(piece), self._size):
                yield piece[start : start + self._size]

    def close(self) -> None:
        self._inner.close()


INFLATED = frozenset({"gzip", "deflate", "br", "zstd"})  # the codings httpx may decode
# What requests ask for (``Accept-Encoding``): zlib's codings, whose bytes inflate 1,032
# times at most; brotli's and zstd's inflate far more (a slice past any cap), and httpx
# decodes them whenever their packages are installed.
ASKED = "gzip, deflate"


def once(response: httpx.Response, where: str, coding: str) -> None:
    """review21: an answer compressed twice is refused unread. httpx decodes each coding
    named, one inside the other: a 256-byte slice (``Sliced``) of ``gzip, gzip`` inflated
    to 264 kB of the inner gzip, and that to 272 MB in one piece, past any cap. And one
    compressed in a coding not asked for (``br``, ``zstd``: ``ASKED``) is refused unread."""
    named = response.headers.get_list("content-encoding", split_commas=True)
    inflated = [name for name in (n.strip().lower() for n in named) if name in INFLATED]
    if len(inflated) > 1:
        raise PermanentError(
            f"answer from {where} is compressed more than once (Content-Encoding: {coding}):"
            " the server is broken or hostile; not read",
            status=response.status_code,
        )
    if inflated and inflated[0] not in ASKED.split(", "):
        raise PermanentError(
            f"answer from {where} is compressed as {inflated[0]}, which was not asked for"
            f" (Accept-Encoding: {ASKED}): the server is broken or hostile; not read",
            status=response.status_code,
        )
