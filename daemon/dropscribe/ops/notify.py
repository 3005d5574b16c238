"""systemd's notification protocol (sd_notify), in the few lines it takes.

Outside systemd ($NOTIFY_SOCKET unset) every call does nothing.
"""

from __future__ import annotations

import contextlib
import os
import socket


class Notifier:
    def __init__(self, environ: dict[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        address = env.get("NOTIFY_SOCKET", "")
        self._address = "\0" + address[1:] if address.startswith("@") else address
        usec = env.get("WATCHDOG_USEC", "")
        # Pet the watchdog twice per period, as sd_watchdog_enabled(3) advises.
        self.watchdog_interval = int(usec) / 2_000_000 if usec.isdigit() else None

    def __call__(self, **fields: str) -> None:
        """Send e.g. READY="1", STATUS="...", WATCHDOG="1", STOPPING="1", RELOADING="1"."""
        if not self._address:
            return
        message = "\n".join(f"{key}={value}" for key, value in fields.items()).encode()
        with (
            contextlib.suppress(OSError),
            socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock,
        ):
            # never waits (ready22): a listener that reads nothing (512 datagrams queued)
            # held the main loop in this call; a message it has no room for is dropped
            sock.sendto(message, socket.MSG_DONTWAIT, self._address)
