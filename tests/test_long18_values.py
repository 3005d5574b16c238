"""long18: a config value of 200,000 characters (an endpoint's name, api_key_env:, an
inbox's path:, base_url:) is quoted cut in check-config's problems and in a SIGHUP's
config.reload_failed event, not whole (a line of 200 kB)."""

from __future__ import annotations

import signal

import pytest

from conftest import DaemonProcess

LONG = "v" * 200_000
LINE = 1_200  # what a problem's line may take: its file, line, key and cut message


def make_long(setup, where: str) -> None:
    """``setup``'s config with ``where``'s value 200,000 characters long."""
    local = setup.data["endpoints"]["local"]
    match where:
        case "endpoint":
            setup.data["defaults"]["endpoint"] = LONG
        case "api_key_env":
            local["api_key_env"] = LONG
        case "path":
            setup.data["inboxes"][0]["path"] = "/" + LONG
        case "base_url":
            local["base_url"] = "http://" + LONG
        case "spaced":  # a value with spaces: no stretch is long, the message is
            setup.data["inboxes"][0]["path"] = "/x " * 70_000


WHERE = ["endpoint", "api_key_env", "path", "base_url", "spaced"]


@pytest.mark.parametrize("where", WHERE)
def test_check_config_quotes_a_long_value_cut(setup, where):
    """check-config: exit 2, each problem on a line of at most 1,200 characters."""
    make_long(setup, where)
    done = setup.command("check-config")
    assert done.returncode == 2, done.stderr[:2000]
    lines = done.stderr.splitlines()
    assert lines
    assert max(map(len, lines)) <= LINE, [line[:300] for line in lines]
    assert all("…" in line for line in lines if "vvvvvvvvvv" in line or "/x /x" in line)


def test_a_reload_with_a_long_value_says_it_cut(setup):
    """SIGHUP onto a config whose inbox path: is 200,000 characters: config.reload_failed,
    its line under 2,000 characters, the running config kept."""
    daemon = DaemonProcess(setup)
    try:
        daemon.wait_event("daemon.started", timeout=60)
        make_long(setup, "path")
        setup.write()
        daemon.signal(signal.SIGHUP)
        daemon.wait_event("config.reload_failed", timeout=60)
        (line,) = [line for line in daemon.raw if "config.reload_failed" in line]
        assert len(line) < 2_000, line[:500]
    finally:
        daemon.signal(signal.SIGTERM)
        daemon.wait(30)


def test_an_event_shows_a_long_model_cut(setup):
    """model: of 200,000 characters, once over one file: no event line reaches 20,000
    characters (each field is cut after 8,192), and the run ends."""
    from conftest import make_wav

    setup.data["defaults"]["model"] = "m" * 200_000
    make_wav(setup.inbox / "a.wav")
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait(60) in {0, 1, 2}, daemon
    assert any("mmmmmmmm" in line for line in daemon.raw), daemon
    assert max(map(len, daemon.raw)) < 20_000, max(daemon.raw, key=len)[:300]
