"""lock17: the ledger's write turn (``ledger/writeturn.py``) alone: held by another
process, it is waited for no longer than the wait, the error names the lock file and
its holder's pid, and a wait given up leaves nobody holding it. The daemon and ``retry``
held from it: test_lock17_held.py."""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

import pytest

from conftest import patience, wait_for
from dropscribe.ledger.writeturn import WAIT, TurnTaken, WriteTurn
from test_lock17_held import holding, takes

if TYPE_CHECKING:
    from pathlib import Path

# ------------------------------------------------------------ the turn alone


def test_a_turn_held_elsewhere_is_given_up_after_the_wait_naming_file_and_holder(
    tmp_path: Path,
) -> None:
    """take() raises TurnTaken after its wait, naming the lock file and the holder's pid."""
    lock = tmp_path / "ledger.sqlite3.lock"
    turn = WriteTurn(str(lock))
    try:
        with holding(lock) as holder:
            started = time.monotonic()
            with pytest.raises(TurnTaken) as raised:
                turn.take(None, 0.3)
            assert time.monotonic() - started >= 0.3
        assert str(raised.value) == (
            f"cannot take the ledger's write turn: {lock} is held by process {holder.pid}"
            " (waited 0.3 s for it)"
        )
        assert WAIT == 30.0  # as sqlite3.connect(timeout=30)
    finally:
        turn.close()


def test_a_wait_given_up_lets_the_turn_go_once_had_and_the_next_take_gets_it(
    tmp_path: Path,
) -> None:
    """After a wait given up, the holder lets go: nobody is left holding the turn (the
    blocked wait lets it go), and the next take() has it, waiting for it unbounded no more."""
    lock = tmp_path / "ledger.sqlite3.lock"
    turn = WriteTurn(str(lock))
    try:
        with holding(lock), pytest.raises(TurnTaken):
            turn.take(None, 0.2)
        wait_for(lambda: takes(lock), 10, "the given-up wait to let the turn go")
        turn.take(None, patience(5))
        assert not takes(lock)
        turn.release()
        assert takes(lock)
    finally:
        turn.close()


def test_a_wait_counted_from_an_earlier_time_is_given_up_at_once(tmp_path: Path) -> None:
    """Writes queued while an earlier wait ran (``since`` then) wait no longer than the
    wait from then: given up at once when it has passed, the turn still held."""
    lock = tmp_path / "ledger.sqlite3.lock"
    turn = WriteTurn(str(lock))
    try:
        with holding(lock):
            started = time.monotonic()
            with pytest.raises(TurnTaken, match=r"\(waited 30 s for it\)"):
                turn.take(started - WAIT)
            assert time.monotonic() - started < patience(1)
    finally:
        turn.close()


def test_a_wait_goes_on_when_the_holder_lets_go_within_it(tmp_path: Path) -> None:
    """A holder letting go during the wait hands the turn to the waiter."""
    lock = tmp_path / "ledger.sqlite3.lock"
    turn = WriteTurn(str(lock))
    try:
        with holding(lock) as holder:
            assert holder.stdin is not None
            threading.Timer(0.3, holder.stdin.close).start()
            turn.take(None, patience(10))
        assert not takes(lock)
        turn.release()
    finally:
        turn.close()
