"""hooks16, through the real ``dropscribe`` process: a webhook whose name never resolves,
and an upload or a webhook behind an environment proxy whose name never resolves, fail
within their timeout with an event naming the host and the setting, and the worker goes
on. The daemon runs in a mount namespace whose /etc/resolv.conf names a silent UDP server
on 127.0.0.0/8 (test_chat15_daemon's ``silent_resolver``: the real getaddrinfo, nothing
patched); the proxy is a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import datetime as dt
import signal
from typing import TYPE_CHECKING, Any

import pytest

from conftest import DaemonProcess, make_wav, patience
from test_chat15_daemon import silent_resolver  # noqa: F401 - the fixture, used by name
from test_hooks import Receiver

if TYPE_CHECKING:
    from pathlib import Path

    from conftest import Setup

HOOK_TIMEOUT = 2


@pytest.fixture
def resolv(silent_resolver: Path) -> Path:  # noqa: F811 - the fixture imported by name
    """A resolv.conf whose nameserver never answers (test_chat15_daemon's)."""
    return silent_resolver


def moment(event: dict[str, Any]) -> float:
    return dt.datetime.fromisoformat(event["timestamp"]).timestamp()


def hook_ended(setup: Setup, daemon: DaemonProcess, timeout: float = 20.0) -> int:
    """A recording dropped into the running ``daemon``'s inbox, its hook's end waited for
    (ran or failed: a failure's event says why), the daemon stopped, reaped even when the
    test fails (else its ResourceWarning fails the next); its exit code."""
    try:
        daemon.wait_event("daemon.started", timeout=timeout)
        make_wav(setup.inbox / "a.wav")
        daemon.wait_output(
            lambda: bool(daemon.named("hook.ran") or daemon.named("hook.failed")),
            timeout,
            "the hook's end",
        )
    finally:
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(timeout=20)
    return code


def proxied(proxy: str, bypass: str = "") -> dict[str, str]:
    """The environment that routes plain-HTTP requests through ``proxy`` (both spellings,
    so the machine's own never win), none bypassing it but ``bypass``."""
    env = {"HTTP_PROXY": proxy, "http_proxy": proxy, "NO_PROXY": bypass, "no_proxy": bypass}
    env.update({"ALL_PROXY": "", "all_proxy": "", "HTTPS_PROXY": "", "https_proxy": ""})
    return env


def hooked(setup: Setup, webhook: str) -> None:
    setup.data["defaults"]["hook"] = {"webhook": webhook, "timeout": HOOK_TIMEOUT}
    setup.data["workers"] = 1


def two_files_hooked(daemon: DaemonProcess, setup: Setup) -> None:
    """Run two files one after the other through the daemon's one worker, each to its
    hook's end; then stop the daemon, which must exit cleanly."""
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("hook.failed", timeout=HOOK_TIMEOUT + 15)
        make_wav(setup.inbox / "b.wav", seconds=0.6)
        daemon.wait_event("hook.failed", count=2, timeout=HOOK_TIMEOUT + 15)
    finally:  # reaped even when the test fails (else its ResourceWarning fails the next)
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(timeout=20)
    assert code == 0, daemon


def within_timeout(daemon: DaemonProcess) -> None:
    """Each hook.failed came within HOOK_TIMEOUT of its file.done (the hook runs then)."""
    for done, failed in zip(daemon.named("file.done"), daemon.named("hook.failed"), strict=True):
        took = moment(failed) - moment(done)
        assert took < HOOK_TIMEOUT + patience(2), f"the webhook took {took:.1f} s"


def test_a_webhook_whose_name_never_resolves_fails_within_its_timeout(
    setup: Setup, resolv: Path
) -> None:
    """The webhook's lookup is cut at the hook's timeout, the event naming the host and
    the setting, and the one worker goes on to the next file (and its hook)."""
    hooked(setup, "http://hook.stalls.test:9/hook")
    daemon = DaemonProcess(setup, mounts={"/etc/resolv.conf": resolv})
    two_files_hooked(daemon, setup)
    assert len(daemon.named("file.done")) == 2
    for failed in daemon.named("hook.failed"):
        assert failed["kind"] == "webhook"
        assert failed["error"] == (
            f"the name 'hook.stalls.test' did not resolve within {HOOK_TIMEOUT} s (timeout)"
        )
        assert failed["timeout"] == HOOK_TIMEOUT
    within_timeout(daemon)


def test_a_webhook_behind_a_proxy_whose_name_never_resolves_fails_within_its_timeout(
    setup: Setup, resolv: Path
) -> None:
    """HTTP_PROXY's own name is looked up under the hook's timeout too: the event names
    the proxy's host and the variable; the worker goes on."""
    hooked(setup, "http://hook.example:9/hook")
    env = proxied("http://proxy.stalls.test:3128", bypass="127.0.0.1")  # the uploads not
    daemon = DaemonProcess(setup, env=env, mounts={"/etc/resolv.conf": resolv})
    two_files_hooked(daemon, setup)
    assert len(daemon.named("file.done")) == 2
    for failed in daemon.named("hook.failed"):
        assert failed["error"] == (
            "the proxy's name (HTTP_PROXY) 'proxy.stalls.test' did not resolve"
            f" within {HOOK_TIMEOUT} s (timeout)"
        )
    within_timeout(daemon)


def test_an_upload_behind_a_proxy_whose_name_never_resolves_fails_at_connect_timeout(
    setup: Setup, resolv: Path
) -> None:
    """An upload through HTTP_PROXY whose name the resolver never answers fails within the
    endpoint's connect_timeout, naming the proxy's host, the variable and the setting; the
    daemon stops cleanly."""
    daemon = upload_through_unresolved(setup, proxied("http://proxy.stalls.test:3128"), resolv)
    assert daemon.variable_named("HTTP_PROXY")
    assert setup.api.connections == 0  # nothing reached the server past the proxy


class Unresolved(DaemonProcess):
    """A daemon whose upload went through a proxy whose name never resolved."""

    base_url = ""  # the endpoint's

    def variable_named(self, variable: str) -> bool:
        """Its first upload.failed names ``variable``, the proxy's host, the 1-s bound
        and the setting, and the endpoint's URL."""
        error = self.named("upload.failed")[0]["error"]
        said = f"the proxy's name ({variable}) 'proxy.stalls.test' did not resolve within 1 s"
        return f"{said} (connect_timeout)" in error and self.base_url in error


def upload_through_unresolved(setup: Setup, env: dict[str, str], resolv: Path) -> Unresolved:
    """The daemon run under ``env`` (a proxy named proxy.stalls.test) and the resolver
    ``resolv`` (which never answers), connect_timeout 1 s, until an upload failed; then
    stopped by SIGTERM (it must exit 0)."""
    endpoint = setup.data["endpoints"]["local"]
    endpoint.update({"connect_timeout": 1, "timeout": 5, "max_attempts": 1})
    daemon = Unresolved(setup, env=env, mounts={"/etc/resolv.conf": resolv})
    daemon.base_url = endpoint["base_url"]
    try:
        daemon.wait_event("daemon.started")
        make_wav(setup.inbox / "a.wav")
        daemon.wait_event("upload.failed", timeout=20)
    finally:  # reaped even when the test fails (else its ResourceWarning fails the next)
        daemon.signal(signal.SIGTERM)
        code = daemon.wait(timeout=20)
    assert code == 0, daemon
    return daemon


def test_a_webhook_goes_through_a_working_proxy(setup: Setup) -> None:
    """HTTP_PROXY is still honoured for a webhook: the proxy gets the POST (its name is
    the proxy's to look up, not ours) and the hook runs."""
    with Receiver() as proxy:
        hooked(setup, "http://hook.example:9/hook")
        # flake22: what this checks is the route, not the timeout (a loaded machine's)
        setup.data["defaults"]["hook"]["timeout"] = patience(HOOK_TIMEOUT)
        env = proxied(proxy.url.removesuffix("/hook"), bypass="127.0.0.1")
        daemon = DaemonProcess(setup, env=env)
        assert hook_ended(setup, daemon) == 0, daemon
    assert not daemon.named("hook.failed"), daemon.named("hook.failed")
    assert [body["outcome"] for body in proxy.bodies] == ["done"]
