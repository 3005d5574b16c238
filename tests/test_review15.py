"""review15: what the review of the day's change fixed, each checked on its own."""

from __future__ import annotations

import sqlite3

import httpcore
import httpx
import pytest

from conftest import patience
from dropscribe.ledger.store import ReadOnly
from dropscribe.transcribe import batchpass, cutoff
from dropscribe.transcribe.resolve import Resolver

LONG = "a" * 64 + ".example"  # a label over 63 characters: getaddrinfo's idna refuses it


def test_a_name_the_resolver_cannot_encode_is_a_connect_error_saying_so():
    """getaddrinfo's UnicodeError (a label too long) leaves as ConnectError caused by it,
    not as "no address" with the lookup thread dying on an unhandled exception."""
    with pytest.raises(httpcore.ConnectError) as info:
        Resolver().addresses(LONG, 80, patience(5), "5 s (timeout)")
    assert isinstance(info.value.__cause__, UnicodeError)
    assert "has no address" not in str(info.value)


def test_a_client_on_the_cut_transport_says_why_the_name_is_refused():
    """Through cutoff.transport() (the chat steps' and uploads' pool), the same name is an
    httpx.ConnectError naming the encoding's failure."""
    url = f"http://{LONG}/v1"
    with (
        httpx.Client(transport=cutoff.transport(url, httpx.Limits())) as client,
        pytest.raises(httpx.ConnectError) as info,
    ):
        client.get(url)
    # The encoder's own words (3.11 and 3.12 word it differently, both name the label).
    assert "label" in str(info.value), info.value
    assert "no address" not in str(info.value)


@pytest.mark.parametrize("folder", ["state?1", "state#1", "state%3F"])
def test_a_ledger_under_a_folder_named_with_uri_characters_is_read_in_place(tmp_path, folder):
    """``ledger migrate``'s read-only SQLite ledger under a state_dir whose name holds ``?``,
    ``#`` or ``%`` is that ledger, read only (before: the URI was cut there, an empty file
    made read-write beside it, and nothing found to copy)."""
    path = tmp_path / folder / "ledger.sqlite3"
    path.parent.mkdir()
    made = sqlite3.connect(path)
    made.execute("CREATE TABLE steps (x)")
    made.commit()
    made.close()
    db = ReadOnly(path)
    try:
        assert sorted(p.name for p in tmp_path.iterdir()) == [folder]  # nothing made beside
        assert "steps" in db.tables()
    finally:
        db.close()


class Counted(dict[int, str]):
    """A dict that counts the texts read from it."""

    read = 0

    def get(self, key: int, default: str | None = None) -> str | None:  # type: ignore[override]
        self.read += 1
        return super().get(key, default)

    def __getitem__(self, key: int) -> str:
        self.read += 1
        return super().__getitem__(key)


def test_a_batchs_prompt_reads_back_only_as_far_as_its_words():
    """Batch k's prompt is the last PROMPT_WORDS words of the batches done before it, read
    back from the last of them (batch 2000 of a long recording reads a few, not 2000)."""
    said = batchpass.Said("Names: Ada.", 2)
    said.texts = Counted({j: f"w{j}a w{j}b" for j in range(2000)} | {1997: ""})
    prompt = said.before(2000)
    assert said.texts.read < 50
    words = " ".join(said.texts[j] for j in range(1999)).split()[-batchpass.PROMPT_WORDS :]
    assert prompt == "Names: Ada. " + " ".join(words)
    assert batchpass.Said(None, 2).before(1) is None  # nothing done before it yet
