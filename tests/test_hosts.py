"""Several hosts, one inbox, one PostgreSQL ledger: real ``dropscribe run`` processes
(each with its own state_dir and API key), a real server, a real test API."""

from __future__ import annotations

import collections
import contextlib
import signal
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

import pg
from conftest import DaemonProcess, wait_for, wav_bytes
from fakeapi import FakeAPI

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]  # real daemon processes

FORMATS = ("txt", "srt")
OUTAGE_SECONDS = 60.0  # how long PostgreSQL is down in the outage test (the minute)


class Host:
    """One host's config: the shared inbox and ledger, its own state_dir and API key."""

    def __init__(
        self, root: Path, name: str, inbox: Path, api: FakeAPI, url: str, **extra: Any
    ) -> None:
        self.name = name
        self.root = root / name
        self.root.mkdir()
        (self.root / "ledger.password").write_text(pg.PASSWORD + "\n")
        self.config_path = self.root / "dropscribe.yaml"
        self.data: dict[str, Any] = {
            "endpoints": {
                "api": {
                    "base_url": api.base_url,
                    "api_key_env": "DROPSCRIBE_TEST_KEY",
                    "timeout": 20,
                    "max_attempts": 3,
                    "backoff_max": 0.2,
                    "max_concurrency": 2,
                }
            },
            "defaults": {
                "endpoint": "api",
                "model": "whisper-1",
                "settle_seconds": 0.3,
                "formats": list(FORMATS),
            },
            "inboxes": [{"path": str(inbox), "name": "calls"}],
            "state_dir": str(self.root / "state"),
            "rescan_seconds": 1,
            "shutdown_grace": 5,
            "workers": 2,
            "processes": 1,
            "ledger": {
                "url": url,
                "password_file": "ledger.password",
                "host": name,
                "lease_seconds": 3,
            },
            **extra,
        }

    @property
    def key(self) -> str:
        return f"sk-test-{self.name}-0123456789"

    @property
    def env(self) -> dict[str, str]:
        return {"DROPSCRIBE_TEST_KEY": self.key}

    def write(self) -> Path:
        self.config_path.write_text(yaml.safe_dump(self.data, sort_keys=False))
        return self.config_path


@contextlib.contextmanager
def running(hosts: list[Host]) -> Iterator[list[DaemonProcess]]:
    procs: list[DaemonProcess] = []
    try:
        procs.extend(DaemonProcess(host) for host in hosts)  # type: ignore[arg-type]
        for proc in procs:
            proc.wait_event("daemon.started", timeout=30)
        yield procs
    finally:
        for proc in procs:
            if proc.proc.poll() is None:
                proc.signal(signal.SIGTERM)
        for proc in procs:
            if proc.proc.poll() is None:
                proc.wait(30)


def drop(inbox: Path, start: int, count: int) -> list[Path]:
    """``count`` recordings, each its own content (a tone of its own pitch)."""
    paths = []
    for n in range(start, start + count):
        path = inbox / f"call-{n:04d}.wav"
        temp = inbox / f".call-{n:04d}.part"
        temp.write_bytes(wav_bytes(0.2, freq=150.0 + n))
        temp.rename(path)
        paths.append(path)
    return paths


def complete(paths: list[Path]) -> bool:
    return all(p.with_suffix(f".{ext}").exists() for p in paths for ext in FORMATS)


def assert_one_set_each(inbox: Path, paths: list[Path]) -> None:
    """Every recording has exactly its sidecars; nothing else (no second set under
    another name, no temp file, nothing quarantined) is in the inbox."""
    expected = {p.name for p in paths} | {
        p.with_suffix(f".{e}").name for p in paths for e in FORMATS
    }
    found = {p.name for p in inbox.iterdir() if p.is_file()}
    assert found == expected
    assert not (inbox / "failed").exists() or not any((inbox / "failed").iterdir())
    for path in paths:
        assert path.with_suffix(".txt").read_text().strip(), path


def uploads_by_content(api: FakeAPI) -> dict[str, list[Any]]:
    by: dict[str, list[Any]] = collections.defaultdict(list)
    for upload in list(api.uploads):
        by[upload.sha256].append(upload)
    return by


def host_of(upload: Any) -> str:
    return upload.headers.get("authorization", "").split("-")[2]


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    folder = tmp_path / "share" / "calls"
    folder.mkdir(parents=True)
    return folder


def test_three_hosts_transcribe_300_files_once_each(tmp_path, inbox, pg_url):
    """Three daemons on one inbox and ledger (one of them in two worker processes): 300
    recordings, exactly one upload and one complete sidecar set each, every host doing
    a share, and no sidecar set written twice."""
    with FakeAPI(delay=0.05) as api:
        hosts = [Host(tmp_path, f"h{n}", inbox, api, pg_url) for n in range(2)]
        hosts.append(Host(tmp_path, "h2", inbox, api, pg_url, processes=2))
        with running(hosts) as procs:
            paths = drop(inbox, 0, 300)
            wait_for(lambda: complete(paths), timeout=180, what="300 sidecar sets")
            wait_for(  # each file.done follows its sidecars
                lambda: sum(len(p.named("file.done")) for p in procs) >= 300, what="300 done"
            )
        assert_one_set_each(inbox, paths)
        by_content = uploads_by_content(api)
        assert len(by_content) == 300
        assert all(len(ups) == 1 for ups in by_content.values())
        share = collections.Counter(host_of(u) for ups in by_content.values() for u in ups)
        assert set(share) == {"h0", "h1", "h2"}
        written = sum(len(p.named("sidecar.written")) for p in procs)
        assert written == 300 * len(FORMATS)  # no set was written twice, even identically
        done = collections.Counter(e["path"] for p in procs for e in p.named("file.done"))
        assert sorted(done.values()) == [1] * 300
        claimed_elsewhere = sum(len(p.named("file.claimed_elsewhere")) for p in procs)
        assert claimed_elsewhere > 0  # they did meet over the same files


def test_hosts_mounting_the_share_at_different_paths_share_its_sidecars(tmp_path, inbox, pg_url):
    """One host sees the share at another path (a bind mount): the ledger's paths are
    relative to the named inbox, so the two agree on what is done and whose sidecars
    are whose: one set per recording."""
    other = tmp_path / "mnt" / "calls"
    other.mkdir(parents=True)
    import subprocess

    bound = subprocess.run(
        ["mount", "--bind", str(inbox), str(other)], capture_output=True, text=True, check=False
    )
    if bound.returncode:
        pytest.skip(f"cannot bind-mount here: {bound.stderr.strip()}")
    try:
        with FakeAPI(delay=0.05) as api:
            a = Host(tmp_path, "a", inbox, api, pg_url)
            b = Host(tmp_path, "b", other, api, pg_url)
            with running([a, b]) as procs:
                paths = drop(inbox, 0, 40)
                wait_for(lambda: complete(paths), timeout=60, what="40 sidecar sets")
            assert_one_set_each(inbox, paths)
            assert all(len(u) == 1 for u in uploads_by_content(api).values())
            assert {host_of(u) for u in api.uploads} == {"a", "b"}
            b_done = [Path(e["path"]) for e in procs[1].named("file.done")]
            assert b_done
            assert all(other in p.parents for p in b_done)
    finally:
        subprocess.run(["umount", "-l", str(other)], check=False)


def test_a_host_killed_mid_upload_loses_its_files_to_the_others_after_the_lease(
    tmp_path, inbox, pg_url
):
    """kill -9 one of three hosts with uploads in flight: the others take its claims over
    once the lease runs out and finish every file; the only second uploads are of what it
    had in flight."""
    with FakeAPI(delay=0.4) as api:
        hosts = [Host(tmp_path, f"h{n}", inbox, api, pg_url) for n in range(3)]
        with running(hosts) as procs:
            paths = drop(inbox, 0, 60)

            def victim_busy() -> bool:
                ups = list(api.uploads)
                return len(ups) >= 10 and any(host_of(u) == "h0" and not u.finished for u in ups)

            wait_for(victim_busy, timeout=60, what="h0 uploading")
            procs[0].proc.kill()
            procs[0].wait(10)
            # in flight: what h0 had sent (or was sending) but not yet marked done
            done_by_h0 = {Path(e["path"]).name for e in procs[0].named("file.done")}
            in_flight = {u.filename for u in list(api.uploads) if host_of(u) == "h0"} - done_by_h0
            assert in_flight
            wait_for(lambda: complete(paths), timeout=120, what="every file, on h1 and h2")
        assert_one_set_each(inbox, paths)
        names = collections.Counter(u.filename for u in api.uploads)
        twice = {name for name, count in names.items() if count > 1}
        assert twice <= in_flight
        assert sum(names.values()) - len(names) <= len(in_flight)  # second uploads
        taken = [e for p in procs[1:] for e in p.named("claim.taken_over")]
        assert len(taken) >= len(twice)
        assert all(e["from_run"].startswith("h0:") for e in taken)


def test_a_host_cut_off_from_the_database_stops_claiming_and_resumes(tmp_path, inbox, pg_server):
    """One host reaches the database through a relay the test cuts: it says so, takes no
    new file while cut off (the other host does them all), and says so again and takes
    files once the relay is mended."""
    url = pg_server.database()
    port = int(url.rsplit(":", 1)[1].split("/")[0])
    relay = pg.Proxy(port)
    cut_url = url.replace(f":{port}/", f":{relay.port}/")
    try:
        with FakeAPI(delay=0.05) as api:
            near = Host(tmp_path, "near", inbox, api, url)
            far = Host(tmp_path, "far", inbox, api, cut_url)
            with running([near, far]) as (near_proc, far_proc):
                first = drop(inbox, 0, 20)
                wait_for(lambda: complete(first), timeout=60, what="the first 20")
                relay.cut()
                far_proc.wait_event("ledger.unavailable", timeout=30)
                (said,) = far_proc.named("ledger.unavailable")
                assert said["ledger"] == cut_url
                assert pg.PASSWORD not in "".join(far_proc.raw)
                cut_at = time.monotonic()
                second = drop(inbox, 20, 20)
                wait_for(lambda: complete(second), timeout=60, what="the next 20, by near")
                assert not [u for u in api.uploads if host_of(u) == "far" and u.at > cut_at]
                assert far_proc.proc.poll() is None  # still running, waiting
                relay.mend()
                far_proc.wait_event("ledger.available", timeout=30)
                near_proc.signal(signal.SIGTERM)
                assert near_proc.wait(30) == 0
                back_at = time.monotonic()
                third = drop(inbox, 40, 10)
                wait_for(lambda: complete(third), timeout=60, what="the last 10, by far")
        assert_one_set_each(inbox, first + second + third)
        assert {host_of(u) for u in api.uploads if u.at > back_at} == {"far"}
        assert all(len(u) == 1 for u in uploads_by_content(api).values())
    finally:
        relay.close()


def test_postgresql_down_for_a_minute_loses_nothing_and_quarantines_nothing(tmp_path, inbox):
    """The database stops for a minute under two running hosts: both say so, keep
    running, and once it is back finish every file (those dropped meanwhile too), none
    quarantined and none uploaded twice."""
    with pg.own_cluster() as cluster, FakeAPI(delay=0.05) as api:
        url = cluster.database()
        hosts = [Host(tmp_path, f"h{n}", inbox, api, url) for n in range(2)]
        with running(hosts) as procs:
            first = drop(inbox, 0, 20)
            wait_for(lambda: complete(first), timeout=60, what="the first 20")
            api.delay = 1.0  # uploads are in flight as the database goes
            more = drop(inbox, 20, 10)
            wait_for(lambda: len(api.uploads) >= 22, timeout=30, what="uploads in flight")
            cluster.stop()
            stopped_at = time.monotonic()
            done_before = {Path(e["path"]).name for p in procs for e in p.named("file.done")}
            for proc in procs:
                proc.wait_event("ledger.unavailable", timeout=30)
            # claimed before the stop (no claim is made without the database), their uploads
            # seen by the fake API by now: a body still arriving as the database stopped is
            # counted once it has come (CI, under load: call-0022 was not, and was sent again)
            in_flight = {u.filename for u in list(api.uploads)} - done_before
            api.delay = 0.05
            during = drop(inbox, 30, 10)
            threading.Event().wait(OUTAGE_SECONDS)  # not a sync: the outage under test
            assert all(proc.proc.poll() is None for proc in procs)
            restarted_at = time.monotonic()
            cluster.start()
            for proc in procs:
                proc.wait_event("ledger.available", timeout=60)
            everything = first + more + during
            wait_for(lambda: complete(everything), timeout=90, what="every file after the outage")
        assert_one_set_each(inbox, everything)
        failed = [e for p in procs for e in p.named("file.failed") if e.get("quarantined")]
        assert failed == []
        names = collections.Counter(u.filename for u in api.uploads)
        twice = {name for name, count in names.items() if count > 1}
        assert twice <= in_flight  # at most what was in flight as it stopped
        assert not [u for u in api.uploads if stopped_at + 1 < u.at < restarted_at]
