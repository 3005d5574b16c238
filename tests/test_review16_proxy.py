"""review16: an environment proxy variable httpx cannot use (a bad URL, a scheme it has no
proxy for, no host) is named, by its variable, as something the user fixes: a webhook
behind it fails as a hook (the file is done, not quarantined, no traceback); uploads
behind it stop the daemon at its start with exit 2 and a line saying which variable.
Through the real ``dropscribe`` process and fake API."""

from __future__ import annotations

import importlib.util
import signal
from typing import TYPE_CHECKING

import pytest

from conftest import DaemonProcess, make_wav
from dropscribe.commands.console import EXIT_CONFIG
from dropscribe.errors import SetupError
from dropscribe.transcribe import cutoff

if TYPE_CHECKING:
    from conftest import Setup

UNUSABLE = {
    "a bad port": "http://proxy.example:badport",
    "a scheme httpx has no proxy for": "ftp://proxy.example:21",
    "no host": "http://",
}


def only(variable: str, value: str) -> dict[str, str]:
    """The environment with ``variable`` (both spellings) the one proxy, nothing bypassed."""
    env = {f"{v}{s}": "" for v in ("HTTP", "HTTPS", "ALL", "NO") for s in ("_PROXY", "_proxy")}
    env.update({variable: value, variable.lower(): value})
    return env


@pytest.mark.parametrize("value", UNUSABLE.values(), ids=UNUSABLE.keys())
def test_a_webhook_behind_an_unusable_proxy_fails_as_a_hook_and_the_file_is_done(
    setup: Setup, value: str
) -> None:
    """HTTPS_PROXY unusable, the uploads (plain HTTP) not behind it: the https webhook
    fails with hook.failed naming HTTPS_PROXY (not its value), the file is done and stays
    in its inbox, and no job or worker crashed."""
    setup.data["defaults"]["hook"] = {"webhook": "https://hooks.example/in", "timeout": 2}
    daemon = DaemonProcess(setup, env=only("HTTPS_PROXY", value))
    try:
        daemon.wait_event("daemon.started")
        wav = make_wav(setup.inbox / "a.wav")
        daemon.wait_output(
            lambda: daemon.named("hook.failed") or daemon.named("file.failed"),
            timeout=30,
            what="the file's end",
        )
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait(timeout=20) == 0
    [failed] = daemon.named("hook.failed")
    assert failed["kind"] == "webhook"
    assert failed["error"].startswith("the environment's HTTPS_PROXY cannot be used: ")
    assert value not in failed["error"]
    assert [done["path"] for done in daemon.named("file.done")] == [str(wav)]
    assert wav.exists()
    assert not daemon.named("job.crashed")
    assert not daemon.named("worker.crashed")


@pytest.mark.parametrize("processes", [1, 2])
def test_uploads_behind_an_unusable_proxy_stop_the_daemon_at_start_saying_which(
    setup: Setup, processes: int
) -> None:
    """HTTP_PROXY with a bad port, the uploads (plain HTTP) behind it: the daemon exits 2
    at once with one line naming HTTP_PROXY, not daemon.crashed and its traceback (nor,
    with worker processes, one traceback from each as it dies, then daemon.failed)."""
    setup.data["processes"] = processes
    value = UNUSABLE["a bad port"]
    daemon = DaemonProcess(setup, env=only("HTTP_PROXY", value))
    assert daemon.wait(timeout=60) == EXIT_CONFIG, daemon.raw[-3:]
    assert not daemon.named("daemon.crashed")
    said = [e["line"] for e in daemon.named("<unparsed>")]
    line = "dropscribe: the environment's HTTP_PROXY cannot be used: it is not a URL"
    assert said == [f"{line} (Invalid port: 'badport'); fix or unset it\n"]


def test_a_socks_proxy_without_socksio_is_named_as_such(monkeypatch) -> None:
    """cutoff.Proxy: a socks5 proxy where socksio is not installed says what to install."""
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "socksio" else real(name)
    )
    with pytest.raises(SetupError, match=r"ALL_PROXY .*needs socksio: pip install"):
        cutoff.Proxy("socks5://127.0.0.1:1080", "ALL_PROXY")


def test_a_usable_proxy_keeps_its_host() -> None:
    """cutoff.Proxy: an http proxy with credentials is taken, its host alone kept."""
    proxy = cutoff.Proxy("http://user:secret@proxy.example:3128", "HTTPS_PROXY")
    assert (proxy.host, proxy.variable) == ("proxy.example", "HTTPS_PROXY")


def test_a_reload_to_an_endpoint_behind_an_unusable_proxy_is_refused_and_the_daemon_goes_on(
    setup: Setup,
) -> None:
    """HTTPS_PROXY with a bad port, the running endpoint plain HTTP (not behind it): a
    reload adding an https endpoint is refused (config.reload_failed naming HTTPS_PROXY),
    the running config kept, a file then transcribed, and SIGTERM ends the daemon with 0."""
    daemon = DaemonProcess(setup, env=only("HTTPS_PROXY", UNUSABLE["a bad port"]))
    try:
        daemon.wait_event("daemon.started")
        setup.data["endpoints"]["far"] = {"base_url": "https://api.example.test/v1"}
        setup.write()
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reload_failed")
        (failed,) = daemon.named("config.reload_failed")
        assert "HTTPS_PROXY cannot be used" in failed["problems"][0]
        make_wav(setup.inbox / "after.wav")
        daemon.wait_event("file.done")
        assert not daemon.named("daemon.crashed")
    finally:
        daemon.signal(signal.SIGTERM)
    assert daemon.wait() == 0
