"""The service as users install it: a real systemd, booted in a Debian bookworm
container this test makes (debootstrap + systemd-nspawn --boot), the README's service
steps run verbatim inside it, the shipped units installed unchanged."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from conftest import API_KEY, LONG_SPEECH, children_of, make_wav
from fakeapi import FakeAPI, Reply

if TYPE_CHECKING:
    from collections.abc import Iterator

pytestmark = [pytest.mark.slow, pytest.mark.system, pytest.mark.timeout(900)]

ROOT = Path(__file__).parent.parent
PACKAGES = "systemd,systemd-sysv,dbus,python3,python3-venv,ca-certificates"
MIRROR = os.environ.get("DEBIAN_MIRROR", "http://deb.debian.org/debian")
CACHE = Path(os.environ.get("DROPSCRIBE_ROOTFS_CACHE", Path.home() / ".cache" / "dropscribe"))


def unavailable() -> str | None:
    """Why a container cannot be made here, if it cannot."""
    if os.geteuid() != 0:
        return "needs root (debootstrap, systemd-nspawn)"
    for tool in ("debootstrap", "systemd-nspawn", "nsenter"):
        if shutil.which(tool) is None:
            return f"{tool} is missing: apt-get install debootstrap systemd-container"
    return None


def base_root() -> Path:
    """A minimal Debian bookworm with systemd and python3-venv, made once and cached."""
    digest = hashlib.sha256(f"{PACKAGES} {MIRROR}".encode()).hexdigest()[:10]
    cached = CACHE / f"bookworm-{digest}"
    if cached.is_dir():
        return cached
    CACHE.mkdir(parents=True, exist_ok=True)
    building = cached.with_name(cached.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    subprocess.run(
        ["debootstrap", "--variant=minbase", f"--include={PACKAGES}", "bookworm", building, MIRROR],
        check=True,
        capture_output=True,
    )
    building.rename(cached)
    return cached


def checkout_into(folder: Path) -> None:
    """The checkout's files, as a clone has them (plus uncommitted edits)."""
    listed = subprocess.run(
        ["git", "-C", ROOT, "ls-files", "-co", "--exclude-standard", "-z"],
        check=True,
        capture_output=True,
    ).stdout.split(b"\0")
    for name in filter(None, listed):
        source = ROOT / os.fsdecode(name)
        if source.is_file():
            target = folder / os.fsdecode(name)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)


def readme_block(name: str) -> str:
    """The shell block of the README between <!-- name --> and <!-- /name -->."""
    text = (ROOT / "README.md").read_text()
    block = re.search(rf"<!-- {name} -->\n```sh\n(.*?)```\n<!-- /{name} -->", text, re.DOTALL)
    assert block, f"README has no {name} block"
    return block.group(1)


class Container:
    """A booted container; ``sh()`` runs a command inside it as root, and the journal's
    dropscribe events arrive in ``events`` as they are written (``wait_event``)."""

    def __init__(self, root: Path, wheels: Path, log: Path) -> None:
        self.root = root
        self._log = log.open("wb")
        # systemd-nspawn tells its own notify socket the container's leader PID, then
        # READY=1 once the container's systemd has finished starting up.
        notify = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        notify.bind(str(log.with_name("nspawn.sock")))
        notify.settimeout(120)
        self.proc = subprocess.Popen(
            [
                "systemd-nspawn",
                "--quiet",
                f"--directory={root}",
                "--register=no",
                "--keep-unit",
                "--boot",
                "--console=pipe",
                "--notify-ready=yes",
                f"--bind-ro={wheels}:/wheels",
                "--machine=dropscribe-test",
            ],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "NOTIFY_SOCKET": notify.getsockname()},
        )
        said: dict[str, str] = {}
        with notify:
            while "READY" not in said:
                message = notify.recv(4096).decode()
                said.update(line.split("=", 1) for line in message.splitlines() if "=" in line)
        self.leader = int(said["X_NSPAWN_LEADER_PID"])
        booted = self.sh("systemctl is-system-running --wait", check=False).stdout.strip()
        assert booted in {"running", "degraded"}, booted
        self.events: list[dict[str, Any]] = []
        self._arrived = threading.Condition()
        self._journal = self._follow()

    def _follow(self) -> subprocess.Popen[str]:
        """``journalctl -f`` of every dropscribe process, read on a thread. (A unit glob
        would match only the units journalctl knows of when it starts.) Should it end
        before close(), a new one reads the journal again from its start, and entries
        already seen (by cursor) are skipped."""
        self._closing = False
        self._seen: set[str] = set()
        follower = self._journalctl()

        def read() -> None:
            nonlocal follower
            while True:
                assert follower.stdout is not None
                for line in follower.stdout:
                    with contextlib.suppress(ValueError, TypeError, KeyError):
                        entry = json.loads(line)
                        if entry["__CURSOR"] in self._seen:
                            continue
                        self._seen.add(entry["__CURSOR"])
                        event = json.loads(entry["MESSAGE"])
                        event["unit"] = entry.get("_SYSTEMD_UNIT")
                        with self._arrived:
                            self.events.append(event)
                            self._arrived.notify_all()
                follower.wait()
                if self._closing:
                    return
                self.follower_restarts += 1
                follower = self._journal = self._journalctl()

        self.follower_restarts = 0
        self._reader = threading.Thread(target=read, name="test-journal-reader", daemon=True)
        self._reader.start()
        return follower

    def _journalctl(self) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [
                "nsenter",
                f"--target={self.leader}",
                "--all",
                "--",
                "journalctl",
                "--follow",
                "--lines=all",
                "--all",
                "--output=json",
                "SYSLOG_IDENTIFIER=dropscribe",  # the daemon's output, under any unit
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
        )

    def named(self, unit: str, name: str, path: str = "") -> list[dict[str, Any]]:
        """The unit's events called ``name`` (about a path ending in ``path``)."""
        with self._arrived:
            return [
                e
                for e in self.events
                if e.get("unit") == unit
                and e.get("event") == name
                and str(e.get("path", "")).endswith(path)
            ]

    def wait_event(self, unit: str, name: str, path: str = "", timeout: float = 120) -> None:
        """Wait until the unit logs ``name`` (about ``path``); woken by each journal line."""
        with self._arrived:
            if not self._arrived.wait_for(lambda: self.named(unit, name, path), timeout):
                status = self.sh("systemctl status 'dropscribe*' --no-pager -l", check=False)
                pytest.fail(
                    f"timed out after {timeout} s waiting for {name} {path} (journalctl"
                    f" restarted {self.follower_restarts} times)\n{status.stdout}"
                )

    def sh(
        self,
        script: str,
        *,
        check: bool = True,
        timeout: float = 300,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        variables = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LANG": "C.UTF-8"}
        variables.update(env or {})
        done = subprocess.run(
            [
                "nsenter",
                f"--target={self.leader}",
                "--all",
                "--",
                "/usr/bin/env",
                "-i",
                *(f"{k}={v}" for k, v in variables.items()),
                "/bin/sh",
                "-euc",
                f"cd /root\n{script}",
            ],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check:
            assert done.returncode == 0, f"{script}\n{done.stdout}\n{done.stderr}"
        return done

    def path(self, inside: str) -> Path:
        return self.root / inside.lstrip("/")

    def close(self) -> None:
        self._closing = True
        for pid in children_of(self._journal.pid):  # journalctl, forked by nsenter
            os.kill(pid, signal.SIGTERM)
        self._journal.wait(30)
        self._reader.join(30)
        assert self._journal.stdout is not None
        self._journal.stdout.close()
        self.proc.terminate()  # nspawn asks the container's systemd to shut down
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(scope="module")
def api() -> Iterator[FakeAPI]:
    with FakeAPI(api_key=API_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def container(tmp_path_factory, api) -> Iterator[Container]:
    if (why := unavailable()) is not None:
        if os.environ.get("CI"):
            pytest.fail(why)
        pytest.skip(why)
    work = tmp_path_factory.mktemp("service")
    root = work / "root"
    subprocess.run(["cp", "-a", "--reflink=auto", base_root(), root], check=True)
    wheels = work / "wheels"
    pip = [sys.executable, "-m", "pip"]
    # The lock's files (the container's Python is bookworm's 3.11, as the suite's main one).
    lock = ROOT / "requirements" / "service.txt"
    subprocess.run(
        [*pip, "download", "-q", "-d", wheels, "--require-hashes", "-r", lock], check=True
    )
    subprocess.run([*pip, "download", "-q", "-d", wheels, "setuptools>=68", "wheel"], check=True)
    checkout_into(root / "root" / "dropscribe")
    box = Container(root, wheels, work / "console.log")
    try:
        offline = {"PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/wheels"}
        box.sh(readme_block("service-install"), env=offline, timeout=600)
        yield box
    finally:
        box.close()
        shutil.rmtree(work, ignore_errors=True)


def edited_example(api: FakeAPI) -> str:
    """config.example.yaml as a user edits it: the inbox at /srv/recordings (its api/
    folder sent to the API, the rest to the local engine), the key in a file."""
    config = yaml.safe_load((ROOT / "config.example.yaml").read_text())
    openai = config["endpoints"]["openai"]
    openai.pop("api_key_env", None)
    openai.update(base_url=api.base_url, api_key_file="openai-key", max_attempts=2)
    inbox = config["inboxes"][0]
    inbox["path"] = "/srv/recordings"
    inbox["rules"].append({"folder": "api", "endpoint": "openai", "model": "whisper-1"})
    config["defaults"]["settle_seconds"] = 0.5
    config["shutdown_grace"] = 20
    return yaml.safe_dump(config, sort_keys=False)


def speech(path: Path, text: str) -> Path:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is not installed: apt-get install espeak-ng")
    path.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run(["espeak-ng", "-s", "150", "-w", str(path), text], check=True)
    return path


def dropped(box: Container, source: Path, inside: str) -> Path:
    """Put a recording into the container's inbox as a member of the group would."""
    target = box.path(inside)
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target.with_name("." + target.name + ".part"))
    target.with_name("." + target.name + ".part").rename(target)
    box.sh("chgrp -R dropscribe-inbox /srv/recordings && chmod -R g+rwX /srv/recordings")
    return target


def test_the_installed_service_starts_ready_transcribes_reloads_and_stops_cleanly(
    container, api, tmp_path
):
    """Installed as the README says, the shipped unit starts (READY), transcribes a file
    through the API and one with the local engine in a group-writable inbox, applies a
    reload, logs JSON to the journal, and stops with exit 0 during a local transcription."""
    box = container
    box.path("/etc/dropscribe/config.yaml").write_text(edited_example(api))
    box.path("/etc/dropscribe/openai-key").write_text(API_KEY + "\n")
    box.sh(readme_block("service-start"), timeout=120)
    assert box.sh("systemctl is-active dropscribe").stdout.strip() == "active"
    box.wait_event("dropscribe.service", "daemon.started")

    dropped(box, make_wav(tmp_path / "call.wav"), "/srv/recordings/api/call.wav")
    sidecar = box.path("/srv/recordings/api/call.txt")
    box.wait_event("dropscribe.service", "file.done", "api/call.wav")
    assert sidecar.read_text() == "transcript of call.wav\n"
    assert api.uploads[-1].headers["authorization"] == f"Bearer {API_KEY}"

    memo = speech(tmp_path / "memo.wav", "The quick brown fox jumps over the lazy dog.")
    dropped(box, memo, "/srv/recordings/memo.wav")
    local = box.path("/srv/recordings/memo.txt")
    box.wait_event("dropscribe.service", "file.done", "/memo.wav", timeout=180)
    assert "fox" in local.read_text().lower()

    config = box.path("/etc/dropscribe/config.yaml")
    edited = yaml.safe_load(config.read_text())
    edited["defaults"]["formats"] = ["txt", "vtt"]
    config.write_text(yaml.safe_dump(edited, sort_keys=False))
    box.sh("systemctl reload dropscribe")
    box.wait_event("dropscribe.service", "config.reloaded")
    dropped(box, make_wav(tmp_path / "after.wav", freq=300), "/srv/recordings/api/after.wav")
    box.wait_event("dropscribe.service", "file.done", "api/after.wav")
    assert box.path("/srv/recordings/api/after.vtt").exists(), "a vtt after the reload"

    dropped(box, speech(tmp_path / "long.wav", LONG_SPEECH), "/srv/recordings/long.wav")
    box.wait_event("dropscribe.service", "audio.probed", "/long.wav")
    box.sh("systemctl stop dropscribe", timeout=90)
    shown = box.sh("systemctl show dropscribe -p Result -p ExecMainStatus").stdout
    assert "Result=success" in shown, shown
    assert "ExecMainStatus=0" in shown, shown
    box.wait_event("dropscribe.service", "daemon.stopped")
    about_long = [e for e in box.events if str(e.get("path", "")).endswith("/long.wav")]
    # mid-way: the job gave up at its next segment, or (a busy machine) the grace ran out
    assert box.named("dropscribe.service", "job.abandoned", "/long.wav") or box.named(
        "dropscribe.service", "daemon.abandoned"
    ), about_long
    assert not box.path("/srv/recordings/long.txt").exists()
    assert API_KEY not in box.sh("journalctl -u dropscribe -o cat --no-pager").stdout


def test_the_template_unit_runs_an_instance(container, api, tmp_path):
    """dropscribe@podcasts reads /etc/dropscribe/podcasts.yaml and podcasts.key, keeps
    its ledger in /var/lib/dropscribe/podcasts, and transcribes."""
    box = container
    config = yaml.safe_load(edited_example(api))
    config["inboxes"] = [
        {"path": "/srv/recordings/podcasts", "endpoint": "openai", "model": "whisper-1"}
    ]
    box.sh("install -d /srv/recordings/podcasts")
    box.path("/etc/dropscribe/podcasts.yaml").write_text(yaml.safe_dump(config))
    box.path("/etc/dropscribe/podcasts.key").write_text(API_KEY)
    box.sh("/opt/dropscribe/bin/dropscribe service install -c /etc/dropscribe/podcasts.yaml")
    started = box.sh("systemctl enable --now dropscribe@podcasts", check=False, timeout=120)
    journal = box.sh("journalctl -u dropscribe@podcasts -o cat --no-pager", check=False).stdout
    assert started.returncode == 0, journal
    dropped(box, make_wav(tmp_path / "ep1.wav", freq=500), "/srv/recordings/podcasts/ep1.wav")
    box.wait_event("dropscribe@podcasts.service", "file.done", "podcasts/ep1.wav")
    assert box.path("/srv/recordings/podcasts/ep1.txt").exists()
    # An error is an error to journald too: journalctl -p err finds it.
    api.script.append(Reply(400, {"error": {"message": "Invalid file format.", "code": None}}))
    dropped(box, make_wav(tmp_path / "bad.wav", freq=700), "/srv/recordings/podcasts/bad.wav")
    box.wait_event("dropscribe@podcasts.service", "file.failed", "podcasts/bad.wav")
    errors = box.sh("journalctl -u dropscribe@podcasts -p err -o cat --no-pager").stdout
    found = [json.loads(line)["event"] for line in errors.splitlines() if line.startswith("{")]
    assert found == ["file.failed"], errors
    assert box.path("/var/lib/private/dropscribe-podcasts/ledger.sqlite3").exists()
    box.sh("systemctl stop dropscribe@podcasts", timeout=90)
    shown = box.sh("systemctl show dropscribe@podcasts -p Result").stdout
    assert "Result=success" in shown, shown
