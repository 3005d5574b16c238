"""Crashes and faults with files flowing: the real process, kill -9, a misbehaving server."""

from __future__ import annotations

import collections
import json
import random
import signal
import sqlite3

import pytest

from conftest import DaemonProcess, make_wav, wait_for
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger
from fakeapi import Reply, openai_error

pytestmark = pytest.mark.slow


def check_every_file_once(setup, names):
    """Each recording has exactly one complete sidecar set; no temporary file is left."""
    for name in names:
        stem = name.removesuffix(".wav")
        assert (setup.inbox / f"{stem}.txt").read_text() == f"transcript of {name}\n", name
        srt = (setup.inbox / f"{stem}.srt").read_text()
        assert srt.endswith(f"{name}\n"), name
        assert srt.startswith("1\n"), name
    extra = [p.name for p in setup.inbox.iterdir() if p.name.endswith(("-tmp", ".tmp"))]
    assert not extra
    sidecars = [p for p in setup.inbox.iterdir() if p.suffix in {".txt", ".srt"}]
    assert len(sidecars) == 2 * len(names), "a sidecar written twice under two names"


def done_in_ledger(setup) -> int:
    """Files the ledger calls done, read without disturbing the running daemon."""
    db = sqlite3.connect(f"file:{setup.state / LEDGER_NAME}?mode=ro", uri=True)
    try:
        return db.execute("SELECT count(*) FROM files WHERE state = 'done'").fetchone()[0]
    finally:
        db.close()


@pytest.mark.parametrize("processes", [1, 2])
def test_kill_9_at_random_moments_loses_nothing(setup, tmp_path, processes):
    """SIGKILL mid-flow, four times, then a clean run: every file done once, no partial file
    (with worker processes, the killed daemon's workers finish what they hold while the
    next daemon starts: both write the one ledger and take the same job locks)."""
    rng = random.Random(20261125)
    setup.api.delay = 0.05
    setup.data["defaults"]["formats"] = ["txt", "srt"]
    setup.data["workers"] = 4
    setup.data["processes"] = processes
    staging = tmp_path / "staging"
    names = [f"take-{n:02d}.wav" for n in range(40)]
    for n, name in enumerate(names):
        make_wav(staging / name, seconds=0.2, freq=200 + 7 * n)
    batches = [names[i : i + 10] for i in range(0, 40, 10)]
    kills = 0
    for batch in batches:
        daemon = DaemonProcess(setup)
        try:
            daemon.wait_event("daemon.started")
            for name in batch:
                (staging / name).rename(setup.inbox / name)
            # Kill after a random number of sidecars were written: mid-upload, mid-write
            # or between files.
            daemon.wait_event("sidecar.written", rng.randint(1, 12))
            daemon.signal(signal.SIGKILL)
            daemon.wait()
            kills += 1
        finally:
            daemon.kill()
    final = DaemonProcess(setup)
    try:
        final.wait_event("daemon.started")  # signal handlers are in place from here on
        wait_for(
            lambda: all((setup.inbox / n.replace(".wav", ".srt")).exists() for n in names),
            timeout=60,
            what="every file",
        )
        wait_for(lambda: done_in_ledger(setup) == len(names), timeout=60, what="ledger done")
        final.signal(signal.SIGTERM)
        assert final.wait() == 0
    finally:
        final.kill()
    check_every_file_once(setup, names)
    per_file = collections.Counter(u.filename for u in setup.api.uploads)
    duplicates = sum(n - 1 for n in per_file.values())
    assert set(per_file) == set(names)
    # Only an upload in flight at the moment of a kill can be repeated.
    assert duplicates <= kills * setup.data["workers"]
    ledger = SqliteLedger(setup.state / LEDGER_NAME)
    try:
        assert ledger.counts() == {"done": len(names)}
    finally:
        ledger.close()
    print(
        json.dumps(
            {
                "files": len(names),
                "kills": kills,
                "uploads": len(setup.api.uploads),
                "duplicate_uploads": duplicates,
            }
        )
    )


def test_fault_injecting_server_every_file_accounted_for(setup):
    """500, 503, 429+Retry-After, drops, stalls, 400s and a 401: all files done or quarantined."""
    setup.data["endpoints"]["local"].update(
        timeout=1.0, max_attempts=8, backoff_max=0.2, pause_after_failures=3, pause_seconds=0.3
    )
    setup.data["defaults"]["formats"] = ["txt", "srt"]
    faults = [
        openai_error(500, "boom", type_="server_error"),
        openai_error(503, "Slow Down", type_="server_error"),
        openai_error(429, "Rate limit reached", code="rate_limit_exceeded", **{"Retry-After": "1"}),
        Reply(drop=True),
        Reply(stall=3.0),
        openai_error(400, "Invalid file format."),
        Reply(502, "<html><title>502 Bad Gateway</title></html>", content_type="text/html"),
        openai_error(401, "Incorrect API key provided.", code="invalid_api_key"),
        openai_error(400, "Invalid file format."),
    ]
    script = []
    for fault in faults:
        script += [fault, Reply(200, None)]  # None: the default answer for that request
    setup.api.script.extend(
        r for r in script if r.body is not None or r.status != 200 or r.drop or r.stall
    )
    names = [f"f{n:02d}.wav" for n in range(30)]
    for n, name in enumerate(names):
        make_wav(setup.inbox / name, seconds=0.2, freq=150 + 11 * n)
    daemon = DaemonProcess(setup)
    try:
        try:
            wait_for(
                lambda: len(daemon.named("file.done")) + len(daemon.named("file.failed")) >= 30,
                timeout=90,
                what="every file accounted for",
            )
        except BaseException:
            print(collections.Counter(e.get("event") for e in daemon.events))
            print(
                collections.Counter(
                    e.get("path") for e in daemon.events if e.get("event") == "file.detected"
                ).most_common(5)
            )
            print(
                [
                    e
                    for e in daemon.events
                    if e.get("event")
                    in ("upload.failed", "endpoint.paused", "worker.crashed", "<unparsed>")
                ][-15:]
            )
            raise
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0
    finally:
        daemon.kill()
    failed = sorted((setup.inbox / "failed").glob("*.wav"))
    assert len(failed) == 2
    for path in failed:
        assert json.loads(path.with_name(path.name + ".error.json").read_text())["status"] == 400
    done = [n for n in names if (setup.inbox / n.replace(".wav", ".txt")).exists()]
    assert len(done) == 28
    assert not {p.name for p in failed} & set(done)
    by_file = collections.defaultdict(list)
    for up in setup.api.uploads:
        by_file[up.filename].append(up)
    limited = [ups for ups in by_file.values() if any(u.reply == "429" for u in ups)]
    assert limited
    for ups in limited:
        first = next(i for i, u in enumerate(ups) if u.reply == "429")
        assert ups[first + 1].at - ups[first].at >= 1.0, "retried sooner than Retry-After"
    assert daemon.named("endpoint.paused")
    print(
        json.dumps(
            {
                "files": 30,
                "faults": len(faults),
                "done": len(done),
                "quarantined": len(failed),
                "uploads": len(setup.api.uploads),
            }
        )
    )
