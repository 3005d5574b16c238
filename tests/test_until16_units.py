"""until16: the worker Pool hands ``on_done`` each item as its handler returned it (a job's
file with its ``until``), so the worker host keeps no map of its own beside the runner's."""

from __future__ import annotations

import queue
from typing import TYPE_CHECKING

import pytest

from dropscribe.dispatch.pool import Pool

if TYPE_CHECKING:
    from collections.abc import Callable


def ended(handler: Callable[[str], str | None], item: str) -> str:
    """What ``on_done`` heard of ``item`` after a one-thread Pool handled it."""
    heard: queue.SimpleQueue[str] = queue.SimpleQueue()
    pool: Pool[str] = Pool(1, handler, key=str, on_done=heard.put)
    pool.start()
    try:
        assert pool.submit(item)
        return heard.get(timeout=30)
    finally:
        assert pool.close(30) == 0


def test_on_done_hears_the_item_the_handler_returned():
    """A handler that returns an item (the file as its job ended) is heard with it."""
    assert ended(lambda item: f"{item}+until", "a.wav") == "a.wav+until"


@pytest.mark.parametrize("how", ["returns nothing", "raises"])
def test_on_done_hears_the_item_given_when_the_handler_returns_none_or_raises(how):
    """A handler that returns None, or raises, leaves on_done the item it was given."""

    def handler(item: str) -> None:
        if how == "raises":
            raise RuntimeError(item)

    assert ended(handler, "a.wav") == "a.wav"
