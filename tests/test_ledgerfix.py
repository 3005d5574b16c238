"""Pure pieces behind state faults: what an (endpoint, model) pair took or refused, kept
in memory while the ledger cannot take it, and written once it can."""

from __future__ import annotations

import sqlite3
from typing import TYPE_CHECKING, Any

from structlog.testing import capture_logs

from dropscribe.ledger.store import SqliteLedger, mapped
from dropscribe.transcribe import models
from dropscribe.transcribe.limits import Limits

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup


class FullLedger(SqliteLedger):
    """A real ledger whose capability rows fail while ``full`` (a full state_dir)."""

    full = True

    def record_capability(self, *args: Any) -> None:
        if self.full:
            with mapped():  # leaves the ledger as its own writes' errors do
                raise sqlite3.OperationalError("database or disk is full")
        super().record_capability(*args)


def test_a_verdict_the_ledger_cannot_take_is_kept_in_memory_then_written(
    setup: Setup, tmp_path: Path
) -> None:
    """Confirmations and refusals the ledger cannot take raise nothing, say
    ledger.write_failed, count at once, and reach the ledger with the next verdict."""
    endpoint = setup.load().endpoints["local"]
    ledger = FullLedger(tmp_path / "ledger.sqlite3")
    try:
        limits = Limits(ledger)
        with capture_logs() as logs:
            limits.confirm(endpoint, "whisper-1", models.Ask("json", prompt=False), frozenset())
            limits.learn(endpoint, "whisper-1", models.PROMPT, "prompts are not taken")
        assert [e["event"] for e in logs].count("ledger.write_failed") == 2
        caps, confirmed = limits.known(endpoint, "whisper-1")
        assert models.Item("response_format", "json") in confirmed
        assert not caps.prompt
        assert ledger.capabilities_with("refused") == []
        ledger.full = False
        limits.confirm(endpoint, "whisper-1", models.Ask("text", prompt=False), confirmed)
        caps, confirmed = Limits(ledger).known(endpoint, "whisper-1")  # from the ledger alone
        assert {models.Item("response_format", f) for f in ("json", "text")} <= confirmed
        assert not caps.prompt
    finally:
        ledger.close()


def test_a_kept_refusal_is_not_undone_by_a_later_confirmation(setup: Setup, tmp_path: Path) -> None:
    """As in the ledger, a refusal kept in memory stays a refusal."""
    endpoint = setup.load().endpoints["local"]
    ledger = FullLedger(tmp_path / "ledger.sqlite3")
    try:
        limits = Limits(ledger)
        with capture_logs():
            limits.learn(endpoint, "whisper-1", models.PROMPT, "prompts are not taken")
            limits.confirm(endpoint, "whisper-1", models.Ask("json"), frozenset())
        assert not limits.caps(endpoint, "whisper-1").prompt
    finally:
        ledger.close()
