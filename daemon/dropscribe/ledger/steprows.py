"""The steps after the transcript in the ledger (issue 33), for either backend.

``steps``: one step's result, keyed by the transcript (the job key), the step's name and
the hash of its own settings; its attempts, its last error, when it is due again, the
tokens it took. ``step_outputs``: which result each source's step sidecars show now
(path, step), so a sweep knows what is written without looking at the disk.
A backend mixes in ``StepRows`` and provides ``_rows`` and ``_execute``.

One host does each step (stepclaims33): ``hold_step`` claims it before its chat
request. A shared ledger overrides it with a lease on the claims table (``leases.py``:
renewed by the heartbeat, lost ``lease_seconds`` after its host died); a SQLite ledger
has one stepper (the daemon's main process, under the state_dir's lock): nothing to
claim.

Fencing (stepsfence): a host stuck past its step's lease must not write over the host
that took the step over. Every write of a claimed step (its start, result, failure and
which sidecars show it) goes through ``_write_fenced``, which a shared ledger overrides
to check the claim's token in the same transaction (``Leases.fence``); the sidecars'
names are claimed with it too (``finish``), and they get their names only if the claim
is still ours just before (``confirm``).

The hook after a file's steps (``owed.OwedRows.steps_hook_owed``, hooks20: claimed and
owed in one write): one row per source in ``step_hooks`` naming what the steps showed
when their hook was claimed, taken in one statement, so one host runs it for each set
of results."""

from __future__ import annotations

import contextlib
import json
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from dropscribe import names
from dropscribe.vocab.states import JobKey

if TYPE_CHECKING:
    from contextlib import AbstractContextManager
    from pathlib import Path

    from dropscribe.ledger.interface import Claim, FileRow

UPSERT_STEP = """
INSERT INTO steps (key, step, shaping, endpoint, path, state, attempts, error, next_at,
    tokens_in, tokens_out, updated)
VALUES (?, ?, ?, ?, ?, ?, ?, NULL, 0, 0, 0, ?)
ON CONFLICT (key, step, shaping) DO UPDATE SET path = excluded.path, state = excluded.state,
    attempts = excluded.attempts, updated = excluded.updated
"""
STEP_DONE = (
    "UPDATE steps SET state = 'done', result = ?, error = NULL, tokens_in = tokens_in + ?,"
    " tokens_out = tokens_out + ?, updated = ? WHERE key = ? AND step = ? AND shaping = ?"
)
STEP_FAILED = (
    "UPDATE steps SET state = ?, error = ?, next_at = ?, tokens_in = tokens_in + ?,"
    " tokens_out = tokens_out + ?, updated = ? WHERE key = ? AND step = ? AND shaping = ?"
)
# The hook's claim for what a source's steps show (``shown``): a new row, or one for what
# they showed before; the same ``shown`` again changes nothing (the hook of it was claimed).
CLAIM_HOOK = """
INSERT INTO step_hooks (path, shown, token, claimed) VALUES (?, ?, ?, ?)
ON CONFLICT (path) DO UPDATE SET shown = excluded.shown, token = excluded.token,
    claimed = excluded.claimed
WHERE step_hooks.shown <> excluded.shown
"""
UPSERT_OUTPUTS = """
INSERT INTO step_outputs (path, step, key, shaping, outputs, updated) VALUES (?, ?, ?, ?, ?, ?)
ON CONFLICT (path, step) DO UPDATE SET key = excluded.key, shaping = excluded.shaping,
    outputs = excluded.outputs, updated = excluded.updated
"""


@dataclass(frozen=True)
class StepRow:
    key: JobKey
    step: str
    shaping: str
    endpoint: str
    path: str
    state: str  # running | retrying | done | failed
    attempts: int
    error: str | None
    next_at: float
    result: dict[str, Any] | None
    tokens_in: int
    tokens_out: int
    updated: float


COLUMNS = (
    "key, step, shaping, endpoint, path, state, attempts, error, next_at, result,"
    " tokens_in, tokens_out, updated"
)


def _row(row: tuple[Any, ...]) -> StepRow:
    key, step, shaping, endpoint, path, state, attempts, error, next_at, result, *rest = row
    parsed = json.loads(result) if result else None
    return StepRow(
        JobKey.parse(key),
        step,
        shaping,
        endpoint,
        path,
        state,
        attempts,
        error,
        next_at,
        parsed,
        *rest,
    )


class StepRows:
    """The steps' reads and writes (``_rows``, ``_execute`` and ``_file_row`` are the
    backend's)."""

    def _rows(self, sql: str, args: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        raise NotImplementedError

    def _execute(self, sql: str, args: tuple[Any, ...]) -> None:
        raise NotImplementedError

    def _file_row(self, row: tuple[Any, ...]) -> FileRow:
        raise NotImplementedError

    def _stored(self, path: Path | str) -> str:
        raise NotImplementedError

    def settled(self) -> None:
        """Return once the writes queued before are committed (a file's done state is
        queued, not waited for): a write waits for its turn, and writes keep their order."""
        self._execute("DELETE FROM step_outputs WHERE 0 = 1", ())

    def hold_step(
        self,
        key: JobKey,  # noqa: ARG002 - a shared ledger's claim names them
        step: str,  # noqa: ARG002
        shaping: str,  # noqa: ARG002
        path: Path,  # noqa: ARG002
    ) -> AbstractContextManager[Claim | None]:
        """Claim one step of one transcript while the block runs (its chat request, its
        sidecars); raise ClaimedElsewhere if another host holds it. Here: nobody else
        could (one stepper per SQLite ledger), and there is no claim to fence with."""
        return contextlib.nullcontext(None)

    def _write_fenced(self, claim: Claim | None, sql: str, args: tuple[Any, ...]) -> None:
        """``sql``, unless ``claim`` is no longer this host's (then Fenced, nothing
        written). Here: it always is (see ``hold_step``)."""
        del claim
        self._execute(sql, args)

    def done_since(self, since: float) -> list[FileRow]:
        """Files done (sidecars written) at or after ``since``, oldest first."""
        rows = self._rows(
            "SELECT * FROM files WHERE state = 'done' AND updated >= ? ORDER BY updated",
            (since,),
        )
        return [self._file_row(row) for row in rows]

    def step(self, key: JobKey, step: str, shaping: str) -> StepRow | None:
        rows = self._rows(
            f"SELECT {COLUMNS} FROM steps WHERE key = ? AND step = ? AND shaping = ?",  # noqa: S608 - our own names
            (str(key), step, shaping),
        )
        return _row(rows[0]) if rows else None

    def steps_due(self, now: float) -> list[str]:
        """Sources whose retrying steps are due by ``now``."""
        rows = self._rows(
            "SELECT DISTINCT path FROM steps WHERE state = 'retrying' AND next_at <= ?", (now,)
        )
        return [str(r[0]) for r in rows]

    def next_due(self) -> float | None:
        rows = self._rows("SELECT min(next_at) FROM steps WHERE state = 'retrying'")
        return float(rows[0][0]) if rows and rows[0][0] is not None else None

    def step_shown(self, path: Path, step: str) -> tuple[str, str] | None:
        """(job key, step settings hash) of what ``path``'s step sidecars show now."""
        rows = self._rows(
            "SELECT key, shaping FROM step_outputs WHERE path = ? AND step = ?",
            (self._stored(path), step),
        )
        return (str(rows[0][0]), str(rows[0][1])) if rows else None

    def step_started(
        self,
        key: JobKey,
        step: str,
        shaping: str,
        endpoint: str,
        path: Path,
        attempt: int,
        claim: Claim | None = None,
    ) -> None:
        args = (
            str(key),
            step,
            shaping,
            endpoint,
            self._stored(path),
            "running",
            attempt,
            time.time(),
        )
        self._write_fenced(claim, UPSERT_STEP, args)

    def step_done(
        self,
        key: JobKey,
        step: str,
        shaping: str,
        result: dict[str, Any],
        tokens: tuple[int, int],
        claim: Claim | None = None,
    ) -> None:
        blob = json.dumps(result, ensure_ascii=False)
        args = (blob, *tokens, time.time(), str(key), step, shaping)
        self._write_fenced(claim, STEP_DONE, args)

    def step_failed(
        self,
        key: JobKey,
        step: str,
        shaping: str,
        error: str,
        *,
        quarantined: bool,
        next_at: float,
        tokens: tuple[int, int] = (0, 0),
        claim: Claim | None = None,
    ) -> None:
        state = "failed" if quarantined else "retrying"
        args = (state, names.text(error), next_at, *tokens, time.time(), str(key), step, shaping)
        self._write_fenced(claim, STEP_FAILED, args)

    def step_written(
        self,
        path: Path,
        step: str,
        key: JobKey,
        shaping: str,
        outputs: list[Path],
        claim: Claim | None = None,
    ) -> None:
        blob = json.dumps([self._stored(p) for p in outputs])
        args = (self._stored(path), step, str(key), shaping, blob, time.time())
        self._write_fenced(claim, UPSERT_OUTPUTS, args)

    def steps_of(self, key: JobKey) -> list[StepRow]:
        """Every step row of one transcript, the latest first (explain)."""
        rows = self._rows(
            f"SELECT {COLUMNS} FROM steps WHERE key = ? ORDER BY updated DESC",  # noqa: S608
            (str(key),),
        )
        return [_row(r) for r in rows]

    def step_counts(self) -> dict[str, int]:
        rows = self._rows("SELECT state, count(*) FROM steps GROUP BY state")
        return {str(s): int(n) for s, n in rows}

    def step_tokens(self, since: float) -> dict[str, tuple[int, int]]:
        """Tokens in and out per chat endpoint, of steps updated since ``since``."""
        rows = self._rows(
            "SELECT endpoint, sum(tokens_in), sum(tokens_out) FROM steps WHERE updated >= ?"
            " GROUP BY endpoint",
            (since,),
        )
        return {str(e): (int(i or 0), int(o or 0)) for e, i, o in rows}

    def step_states(self, limit: int = 100_000) -> list[StepRow]:
        """Every step row without its result (status), the latest first."""
        rows = self._rows(
            "SELECT key, step, shaping, endpoint, path, state, attempts, error, next_at, NULL,"
            " tokens_in, tokens_out, updated FROM steps ORDER BY updated DESC LIMIT ?",
            (limit,),
        )
        return [_row(r) for r in rows]

    def steps_forgiven(self) -> int:
        """Quarantined steps due again at once, their attempts back to zero (a reload or
        a restart: the cause may be fixed); how many there were."""
        rows = self._rows("SELECT count(*) FROM steps WHERE state = 'failed'")
        if rows and rows[0][0]:
            self._execute(
                "UPDATE steps SET state = 'retrying', attempts = 0, next_at = 0"
                " WHERE state = 'failed'",
                (),
            )
        return int(rows[0][0]) if rows else 0

    def step_sidecars(self, path: Path) -> dict[str, list[str]]:
        """The sidecars each step of ``path`` shows now, by step (explain, the hook)."""
        rows = self._rows(
            "SELECT step, outputs FROM step_outputs WHERE path = ?", (self._stored(path),)
        )
        return {str(step): [str(p) for p in json.loads(blob or "[]")] for step, blob in rows}
