"""review17b: a pending after: (move) done by another host sharing the ledger just as
this one tries it (the recording gone from its inbox between the check and the rename)
is not kept pending: no file.after_failed, no row left that no rescan would ever clear
(the file is no longer in the inbox to come again)."""

from __future__ import annotations

import types
from typing import TYPE_CHECKING, Any

from conftest import make_wav
from dropscribe import beneath
from dropscribe.config import rules
from dropscribe.ingest import source
from dropscribe.jobs import verdicts
from dropscribe.ledger.store import SqliteLedger

if TYPE_CHECKING:
    import pytest


def test_a_pending_move_another_host_did_first_is_settled_not_kept(
    setup: Any, events: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The recording moved away by another host as this one renames it: the pending row
    goes, said as file.after_skipped, not file.after_failed; the hook held back for the
    move is the other host's to run, not this one's (review19)."""
    setup.data["defaults"]["after"] = "move"
    setup.data["defaults"]["hook"] = {"command": ["true"]}
    cfg = setup.load()
    (inbox,) = cfg.inboxes
    path = make_wav(setup.inbox / "a.wav")
    ledger = SqliteLedger(setup.state / "ledger.sqlite3")
    rename = beneath.rename

    def other_host_first(src_fd: int, src: str, dst_fd: int, dst: str) -> None:
        other = setup.root / "elsewhere.wav"
        path.rename(other)  # the other host's move, between our check and our rename
        rename(src_fd, src, dst_fd, dst)

    try:
        ledger.after_failed(path, inbox.name, "move", "Permission denied")
        with source.opened(path) as held:
            settings = rules.effective(inbox, path)
            job = types.SimpleNamespace(
                path=path, held=held, inbox=inbox, settings=settings, after_pending=False
            )
            monkeypatch.setattr(beneath, "rename", other_host_first)
            assert verdicts.again(ledger, job)  # type: ignore[arg-type]
        assert ledger.after_pending(path) is None
    finally:
        ledger.close()
    said = [e["event"] for e in events]
    assert "file.after_failed" not in said
    assert "file.after_skipped" in said
    assert "hook.ran" not in said, said
