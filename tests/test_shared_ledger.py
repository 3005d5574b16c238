"""The PostgreSQL ledger against a real server: claims, leases, fencing, paths relative
to inboxes, the config's ledger: section, status and ledger migrate."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading
from pathlib import Path

import psycopg
import pytest

import pg
from conftest import wait_for
from dropscribe.errors import ClaimedElsewhere, ConfigError, Fenced, SetupError
from dropscribe.ledger.places import Places
from dropscribe.ledger.postgres import PostgresLedger
from dropscribe.ledger.store import LEDGER_NAME, SqliteLedger
from dropscribe.loading import checked as configmod
from dropscribe.vocab.config import SharedLedger
from dropscribe.vocab.states import FileState, JobKey

KEY = JobKey("d" * 64, "s" * 16)


@contextlib.contextmanager
def ledger(url, host, root="/srv/in", lease=30.0, daemon=True):
    opened = PostgresLedger(
        SharedLedger(url, pg.PASSWORD, host, lease),
        Places([("calls", Path(root))]),
        daemon=daemon,
    )
    try:
        yield opened
    finally:
        opened.close()


def test_one_claim_per_job_and_tokens_grow(pg_url):
    """While one host holds a job, another is told who has it; once released, the next
    claim carries a higher token."""
    with ledger(pg_url, "a") as a, ledger(pg_url, "b") as b:
        with a.hold(KEY, Path("/srv/in/x.wav")) as first:
            with pytest.raises(ClaimedElsewhere) as told, b.hold(KEY, Path("/srv/in/x.wav")):
                pass
            assert told.value.host == "a"
            assert 0 < told.value.seconds_left <= 30
        with b.hold(KEY, Path("/srv/in/x.wav")) as second:
            assert second.token > first.token
        assert b.claims() == []


def test_claims_race_from_many_threads_but_one_wins(pg_url):
    """Twenty threads of four hosts claim one job at once: exactly one holds it."""
    hosts = [
        PostgresLedger(SharedLedger(pg_url, pg.PASSWORD, f"h{n}", 30.0), Places([]))
        for n in range(4)
    ]
    winners, barrier, release = [], threading.Barrier(20), threading.Event()

    def claim(led: PostgresLedger) -> None:
        barrier.wait()
        with contextlib.suppress(ClaimedElsewhere), led.hold(KEY, Path("/x.wav")):
            winners.append(led.host)
            release.wait(10)

    threads = [threading.Thread(target=claim, args=(hosts[n % 4],)) for n in range(20)]
    for thread in threads:
        thread.start()
    wait_for(lambda: sum(not t.is_alive() for t in threads) == 19, what="19 refused claims")
    release.set()
    for thread in threads:
        thread.join()
    for led in hosts:
        led.close()
    assert len(winners) == 1


def test_a_lease_that_ran_out_is_taken_over_and_the_old_holder_is_fenced(pg_url):
    """A host whose heartbeat stopped (stuck) loses its claim after lease_seconds;
    another takes the job over with a higher token; the stuck one can then neither
    store its transcript, nor claim sidecar names, nor confirm before renaming."""
    source = Path("/srv/in/x.wav")
    with ledger(pg_url, "stuck", lease=2.0, daemon=False) as stuck, ledger(pg_url, "b") as b:
        with stuck.hold(KEY, source) as old:
            stuck.begin(source, "calls", (1, 2, 3), KEY, {})

            held = []  # the open hold: closing it would release the claim

            def took_over():
                with contextlib.suppress(ClaimedElsewhere):
                    hold = b.hold(KEY, source)
                    held.append((hold, hold.__enter__()))
                return held

            ((hold, new),) = wait_for(took_over, timeout=10, what="the lease to run out")
            assert new.token > old.token
            with pytest.raises(Fenced):
                stuck.finish(
                    source, (KEY, {"text": "late"}, "r1"), [[Path("/srv/in/x.txt")]], claim=old
                )
            with pytest.raises(Fenced):
                stuck.confirm(old)
            b.confirm(new)  # the new owner may
            assert b.job(KEY).result is None  # the stuck host stored nothing
            assert b.owner_of(Path("/srv/in/x.txt")) is None  # nor claimed the name
            got = b.finish(
                source, (KEY, {"text": "hi"}, "r2"), [[Path("/srv/in/x.txt")]], claim=new
            )
            assert got == [Path("/srv/in/x.txt")]
            hold.__exit__(None, None, None)
        assert b.job(KEY).attempts == 1  # begin() counted one; the takeover counts its own


def test_the_heartbeat_keeps_a_claim_longer_than_its_lease(pg_url):
    """A daemon's heartbeat renews its leases: a claim held for three leases stays its own."""
    with (
        ledger(pg_url, "a", lease=2.0) as a,
        ledger(pg_url, "b") as b,
        psycopg.connect(pg_url, password=pg.PASSWORD, autocommit=True) as db,
        a.hold(KEY, Path("/srv/in/x.wav")) as claim,
    ):

        def three_leases_on() -> bool:
            query = "SELECT now() > claimed + interval '6.5 s' FROM claims"
            return bool(db.execute(query).fetchone()[0])

        wait_for(three_leases_on, timeout=15, what="three leases to pass")
        with pytest.raises(ClaimedElsewhere):
            b.hold(KEY, Path("/srv/in/x.wav")).__enter__()
        a.confirm(claim)


def test_hosts_that_mount_the_share_elsewhere_agree_on_paths(pg_url):
    """Paths are kept relative to the inbox's name: each host reads them as its own."""
    with (
        ledger(pg_url, "a", root="/srv/share/calls") as a,
        ledger(pg_url, "b", root="/mnt/calls") as b,
    ):
        source = Path("/srv/share/calls/2026/x.wav")
        with a.hold(KEY, source) as claim:
            a.begin(source, "calls", (10, 20, 30), KEY, {})
            a.finish(
                source, (KEY, {"text": "hi"}, None), [[source.with_suffix(".txt")]], claim=claim
            )
        a.file_done(source, ["txt"], [source.with_suffix(".txt")])
        row = b.file(Path("/mnt/calls/2026/x.wav"))
        assert row is not None
        assert row.state == FileState.DONE
        assert row.path == "/mnt/calls/2026/x.wav"
        assert "/mnt/calls/2026/x.txt" in row.outputs
        assert b.owner_of(Path("/mnt/calls/2026/x.txt")) == "/mnt/calls/2026/x.wav"
        with psycopg.connect(pg_url, password=pg.PASSWORD) as db:
            (stored,) = db.execute("SELECT path FROM files").fetchone()
        assert stored == "@calls/2026/x.wav"


def test_a_database_that_cannot_be_reached_is_a_setup_error_naming_it(pg_server):
    """No server at the URL: SetupError with the URL and what to check, no traceback."""
    url = f"postgresql://dropscribe@127.0.0.1:{pg.free_port()}/nowhere"
    with pytest.raises(SetupError, match=r"127\.0\.0\.1.*is the server up"):
        PostgresLedger(SharedLedger(url, "x", "a", 30.0), Places([]))


def write_config(tmp_path, ledger_section, inbox="inbox"):
    (tmp_path / inbox).mkdir(exist_ok=True)
    text = f"""
endpoints:
  api: {{base_url: "http://127.0.0.1:9/v1", api_key_env: NOKEY}}
defaults: {{endpoint: api, model: whisper-1}}
inboxes:
  - {{path: {inbox}, name: calls}}
state_dir: state
{ledger_section}
"""
    path = tmp_path / "dropscribe.yaml"
    path.write_text(text)
    return path


def test_the_password_comes_from_a_file_and_never_from_the_url(tmp_path, pg_url):
    """password_file is read (relative to the config); a password in the URL is refused
    with the file, line and key, without quoting it."""
    (tmp_path / "ledger.password").write_text(pg.PASSWORD + "\n")
    good = write_config(tmp_path, f"ledger: {{url: '{pg_url}', password_file: ledger.password}}")
    cfg = configmod.load(good, environ={}, keys=False)
    assert cfg.ledger is not None
    assert cfg.ledger.password == pg.PASSWORD
    assert pg.PASSWORD not in repr(cfg.ledger)
    with ledger(cfg.ledger.url, "a"):
        pass
    leaky = pg_url.replace("dropscribe@", f"dropscribe:{pg.PASSWORD}@")
    bad = write_config(tmp_path, f"ledger:\n  url: '{leaky}'")
    with pytest.raises(ConfigError) as raised:
        configmod.load(bad, environ={}, keys=False)
    (problem,) = raised.value.problems
    assert (problem.key, problem.line) == ("ledger.url", 9)
    assert "password_file" in problem.message
    assert pg.PASSWORD not in str(problem)


def test_a_systemd_credential_holds_the_password(tmp_path, pg_url):
    """A bare password_file name is looked up in $CREDENTIALS_DIRECTORY (LoadCredential=)."""
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "ledger-password").write_text(pg.PASSWORD)
    path = write_config(tmp_path, f"ledger: {{url: '{pg_url}', password_file: ledger-password}}")
    cfg = configmod.load(path, environ={"CREDENTIALS_DIRECTORY": str(creds)}, keys=False)
    assert cfg.ledger is not None
    assert cfg.ledger.password == pg.PASSWORD


def run_cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "dropscribe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_status_lists_hosts_their_heartbeats_and_claims(tmp_path, pg_url):
    """dropscribe status on a shared ledger: each running daemon with its last heartbeat,
    and each job in some host's hands, by this host's path."""
    (tmp_path / "ledger.password").write_text(pg.PASSWORD)
    config = write_config(tmp_path, f"ledger: {{url: '{pg_url}', password_file: ledger.password}}")
    inbox = (tmp_path / "inbox").resolve()
    with (
        ledger(pg_url, "transcriber-7", root="/elsewhere/calls") as other,
        other.hold(KEY, Path("/elsewhere/calls/a.wav")),
    ):
        shown = run_cli("status", "-c", str(config))
    assert shown.returncode == 0, shown.stderr
    assert "transcriber-7" in shown.stdout
    assert "running, last heartbeat" in shown.stdout
    assert f"{inbox}/a.wav: transcriber-7" in shown.stdout
    assert pg.PASSWORD not in shown.stdout + shown.stderr


def test_status_says_which_ledger_it_cannot_reach(tmp_path, pg_server):
    """A shared ledger that is down: status fails with its URL and the reason, exit 2 (as
    for a state_dir it cannot read), no traceback."""
    url = f"postgresql://dropscribe@127.0.0.1:{pg.free_port()}/nowhere"
    config = write_config(tmp_path, f"ledger: {{url: '{url}'}}")
    shown = run_cli("status", "-c", str(config))
    assert shown.returncode == 2
    assert url in shown.stderr
    assert "Traceback" not in shown.stderr
    assert "Connection refused" in shown.stderr


def test_ledger_migrate_copies_a_sqlite_ledger_so_done_stays_done(tmp_path, pg_url):
    """ledger migrate copies files, jobs and sidecar claims, paths made relative to the
    inbox; run twice, it copies nothing more."""
    (tmp_path / "ledger.password").write_text(pg.PASSWORD)
    config = write_config(tmp_path, f"ledger: {{url: '{pg_url}', password_file: ledger.password}}")
    inbox = (tmp_path / "inbox").resolve()
    old = SqliteLedger(tmp_path / "state" / LEDGER_NAME)
    source = inbox / "a.wav"
    old.begin(source, "calls", (1, 2, 3), KEY, {"model": "whisper-1"})
    old.finish(source, (KEY, {"text": "hello"}, "req_1"), [[inbox / "a.txt"]])
    old.file_done(source, ["txt"], [inbox / "a.txt"])
    old.save_plan(JobKey("e" * 64, "s" * 16), [(0.0, 10.0, 10.0, True)])
    old.close()
    first = run_cli("ledger", "migrate", "-c", str(config))
    assert first.returncode == 0, first.stderr
    assert "files: 1 copied" in first.stdout
    assert "jobs: 1 copied" in first.stdout
    again = run_cli("ledger", "migrate", "-c", str(config))
    assert "files: 0 copied" in again.stdout
    with ledger(pg_url, "a", root="/mnt/calls") as shared:
        row = shared.file(Path("/mnt/calls/a.wav"))
        assert row is not None
        assert row.state == FileState.DONE
        assert row.formats == "txt"
        assert shared.job(KEY).result == {"text": "hello"}
        assert shared.owner_of(Path("/mnt/calls/a.txt")) == "/mnt/calls/a.wav"
        assert shared.chunk_plan(JobKey("e" * 64, "s" * 16))[0].pause is True


def test_a_daemon_whose_ledger_cannot_be_reached_at_start_says_so_and_exits_2(tmp_path):
    """dropscribe run with the database down: exit 2 (systemd's Restart= tries again),
    the URL and libpq's reason on stderr, no traceback, nothing else started."""
    url = f"postgresql://dropscribe@127.0.0.1:{pg.free_port()}/nowhere"
    config = write_config(tmp_path, f"ledger: {{url: '{url}'}}")
    shown = subprocess.run(
        [sys.executable, "-m", "dropscribe", "run", "-c", str(config)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NOKEY": "sk-unused-0123456789"},
    )
    assert shown.returncode == 2
    assert f"cannot use the ledger at {url}" in shown.stderr
    assert "Connection refused" in shown.stderr
    assert "Traceback" not in shown.stderr


def test_explain_reads_a_shared_ledger_by_this_hosts_path(tmp_path, pg_url):
    """dropscribe explain on a recording another host finished, which that host sees
    under another mount point: this host's path finds it done."""
    (tmp_path / "ledger.password").write_text(pg.PASSWORD)
    config = write_config(tmp_path, f"ledger: {{url: '{pg_url}', password_file: ledger.password}}")
    inbox = (tmp_path / "inbox").resolve()
    (inbox / "a.wav").write_bytes(b"RIFF")
    with ledger(pg_url, "other", root="/elsewhere/calls") as other:
        source = Path("/elsewhere/calls/a.wav")
        with other.hold(KEY, source) as claim:
            other.begin(source, "calls", (1, 2, 3), KEY, {})
            other.finish(
                source, (KEY, {"text": "hi"}, None), [[source.with_suffix(".txt")]], claim=claim
            )
        other.file_done(source, ["txt"], [source.with_suffix(".txt")])
    shown = run_cli("explain", "-c", str(config), str(inbox / "a.wav"))
    assert shown.returncode == 0, shown.stderr
    assert "ledger: done" in shown.stdout
