"""attack16: a proxy variable whose password holds a character a URL reserves (``/``,
``?``, ``#``) stops the daemon with a sentence naming the variable, never the password
(httpx read it as the port and the message quoted it); through the real process."""

from __future__ import annotations

import pytest

from conftest import DaemonProcess, make_wav

pytestmark = pytest.mark.slow

PASSWORD = "pw-SECRET-attack16"


@pytest.mark.parametrize("cut", ["/", "?", "#"])
def test_a_proxy_password_is_never_quoted(setup, cut):
    """HTTP_PROXY=http://user:<password><cut>x@127.0.0.1:3128: exit 2 at once, the line
    names HTTP_PROXY and says what to encode, and the password is in no line."""
    make_wav(setup.inbox / "a.wav")
    value = f"http://user:{PASSWORD}{cut}x@127.0.0.1:3128"
    proc = DaemonProcess(setup, env={"HTTP_PROXY": value, "NO_PROXY": ""})
    assert proc.wait(60) == 2  # EXIT_CONFIG
    said = "".join(proc.raw)
    assert "dropscribe: the environment's HTTP_PROXY cannot be used: it is not a URL" in said
    assert "must be %-encoded" in said
    assert PASSWORD not in said
    assert not setup.api.uploads
