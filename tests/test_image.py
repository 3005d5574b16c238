"""The container image as users run it (podman): a recording dropped in a mounted inbox
gets its sidecars, from the test server on the host's loopback (key from a secret) and
from the bundled tiny.en with no network at all; the daemon is not root, the
HEALTHCHECK passes, and ``podman stop`` ends it with exit code 0.

Runs when DROPSCRIBE_TEST_IMAGE names a built image (``.ci/image`` builds one and prints
its tag: ``export DROPSCRIBE_TEST_IMAGE=$(.ci/image)``)."""

from __future__ import annotations

import contextlib
import json
import os
import resource
import shutil
import socket
import subprocess
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import yaml

from conftest import API_KEY, make_wav, wait_for
from fakeapi import FakeAPI
from test_local import SPOKEN, speak, words

if TYPE_CHECKING:
    from collections.abc import Iterator

IMAGE = os.environ.get("DROPSCRIBE_TEST_IMAGE", "")


def unavailable() -> str | None:
    if not IMAGE:
        return "DROPSCRIBE_TEST_IMAGE is unset (export DROPSCRIBE_TEST_IMAGE=$(.ci/image))"
    if shutil.which("podman") is None:
        return "podman is missing (apt-get install podman runc)"
    return None


pytestmark = [
    pytest.mark.slow,
    pytest.mark.system,
    pytest.mark.timeout(300),
    pytest.mark.skipif(unavailable() is not None, reason=unavailable() or ""),
]


def podman(
    *args: str, check: bool = True, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """podman with runc where it is installed (crun fails on hybrid cgroups)."""
    runtime = ["--runtime", "runc"] if shutil.which("runc") else []
    return subprocess.run(
        ["podman", *runtime, *args], check=check, capture_output=True, text=True, timeout=timeout
    )


def limits() -> list[str]:
    """The ulimits this machine grants (podman asks for more than root may raise here)."""
    nofile = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    nproc = resource.getrlimit(resource.RLIMIT_NPROC)[1]
    nofile = 1 << 20 if nofile == resource.RLIM_INFINITY else nofile
    nproc = 32768 if nproc == resource.RLIM_INFINITY else min(nproc, 32768)
    return ["--ulimit", f"nofile={nofile}:{nofile}", "--ulimit", f"nproc={nproc}:{nproc}"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def image_uid() -> int:
    out = podman("run", "--rm", *limits(), "--network", "none", "--entrypoint", "id", IMAGE, "-u")
    return int(out.stdout)


class Container:
    """One ``podman run -d`` of the image, with an inbox and a config mounted."""

    def __init__(self, root: Path, config: dict[str, Any], *extra: str) -> None:
        self.name = f"dropscribe-test-{uuid.uuid4().hex[:8]}"
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        os.chown(self.inbox, image_uid(), -1)  # the image's user writes the sidecars
        self.port = free_port()
        config |= {"metrics": {"host": "127.0.0.1", "port": self.port}}
        path = root / "config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        path.chmod(0o644)
        self.args = [
            "run",
            "-d",
            "--name",
            self.name,
            *limits(),
            "-v",
            f"{self.inbox}:/srv/recordings",
            "-v",
            f"{path}:/etc/dropscribe/config.yaml:ro",
            "-e",
            f"DROPSCRIBE_HEALTHZ=http://127.0.0.1:{self.port}/healthz",
            *extra,
            IMAGE,
        ]

    def start(self) -> None:
        podman(*self.args)

    def remove(self) -> None:
        podman("rm", "-f", "-t", "0", self.name, check=False)

    def events(self) -> list[dict[str, Any]]:
        out = podman("logs", self.name).stderr + podman("logs", self.name).stdout
        found = []
        for line in out.splitlines():
            with contextlib.suppress(ValueError):
                found.append(json.loads(line))
        return found

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in self.events() if e.get("event") == name]

    def state(self, field: str) -> str:
        return podman("inspect", "--format", f"{{{{.State.{field}}}}}", self.name).stdout.strip()

    def uids(self) -> set[int]:
        """The real and effective uids of every process in the container, seen from the host."""
        found = set()
        for hpid in podman("top", self.name, "hpid").stdout.split()[1:]:
            status = Path(f"/proc/{hpid}/status").read_text()
            (uids,) = [line.split()[1:] for line in status.splitlines() if line.startswith("Uid:")]
            found |= {int(uid) for uid in uids}
        return found


@pytest.fixture
def container(tmp_path: Path) -> Iterator[Any]:
    made: list[Container] = []

    def make(config: dict[str, Any], *extra: str) -> Container:
        made.append(Container(tmp_path, config, *extra))
        return made[-1]

    yield make
    for c in made:
        c.remove()


@pytest.fixture
def secret(tmp_path: Path) -> Iterator[str]:
    """The API key as a podman secret (it lands in /run/secrets/NAME)."""
    name = f"dropscribe-test-key-{uuid.uuid4().hex[:8]}"
    key = tmp_path / "key"
    key.write_text(API_KEY + "\n")
    podman("secret", "create", name, str(key))
    yield name
    podman("secret", "rm", name, check=False)


def healthy(port: int) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    return False


def drop(path: Path, make: Any) -> Path:
    """A recording that appears whole (written aside, renamed in)."""
    aside = path.with_name(f".{path.name}.part")
    make(aside)
    aside.chmod(0o644)
    aside.rename(path)
    return path


def stops_with_0(c: Container) -> None:
    """``podman stop`` (SIGTERM) ends the daemon with exit code 0, its stop logged."""
    stopped = podman("stop", "-t", "20", c.name)
    assert stopped.returncode == 0
    assert c.state("ExitCode") == "0"
    assert c.named("daemon.stopped")


def test_a_dropped_file_is_transcribed_by_the_api_on_the_hosts_loopback(container, secret):
    """The daemon in the image, on the host's network with the key from a podman secret:
    the test server on 127.0.0.1 gets the upload, sidecars appear in the mounted inbox;
    nothing in the container runs as root; the HEALTHCHECK passes; podman stop exits 0."""
    with FakeAPI(api_key=API_KEY) as api:
        config = {
            "endpoints": {"api": {"base_url": api.base_url, "api_key_file": "openai-key"}},
            "defaults": {
                "endpoint": "api",
                "model": "whisper-1",
                "settle_seconds": 0.3,
                "formats": ["txt", "srt"],
            },
            "inboxes": [{"path": "/srv/recordings"}],
            "state_dir": "/var/lib/dropscribe",
            "shutdown_grace": 8,
        }
        c = container(config, "--network", "host", "--secret", f"{secret},target=openai-key")
        c.start()
        wait_for(lambda: healthy(c.port), timeout=60, what="/healthz from the container")
        assert podman("healthcheck", "run", c.name, check=False).returncode == 0
        source = drop(c.inbox / "call.wav", make_wav)
        wait_for(
            lambda: source.with_suffix(".srt").exists() and source.with_suffix(".txt").exists(),
            timeout=60,
            what="the sidecars",
        )
        assert len(api.uploads) == 1
        assert api.uploads[0].headers["authorization"] == f"Bearer {API_KEY}"
        uids = c.uids()
        assert uids, "podman top listed no process"
        assert 0 not in uids
        assert source.with_suffix(".txt").stat().st_uid == image_uid()
        stops_with_0(c)
        assert c.named("file.done")


def test_the_bundled_model_transcribes_speech_with_no_network(container):
    """The image's default config (the local engine, tiny.en bundled) with --network
    none: real speech dropped in the inbox comes back as its words; podman stop exits 0."""
    if (
        podman(
            "run",
            "--rm",
            *limits(),
            "--network",
            "none",
            "--entrypoint",
            "python3",
            IMAGE,
            "-c",
            "import faster_whisper",
            check=False,
        ).returncode
        != 0
    ):
        pytest.skip("this image has no local engine (the -lite one?)")
    config = yaml.safe_load(
        Path(__file__).parent.parent.joinpath("deploy", "container", "config.yaml").read_text()
    )
    config["defaults"]["settle_seconds"] = 0.3
    c = container(config, "--network", "none")
    c.start()
    source = drop(c.inbox / "memo.wav", speak)
    wait_for(lambda: source.with_suffix(".txt").exists(), timeout=120, what="the transcript")
    heard = set(words(source.with_suffix(".txt").read_text()))
    said = words(SPOKEN)
    assert sum(w in heard for w in said) / len(said) >= 0.8, heard  # as tests/test_local.py
    assert c.named("model.loaded")[0]["model"] == "tiny.en"
    stops_with_0(c)
