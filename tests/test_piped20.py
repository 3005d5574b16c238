"""A reading command whose output's reader has gone away (``dropscribe status | head``)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest


@pytest.mark.parametrize("command", ["status", "check-config", "search", "explain"])
def test_a_closed_output_ends_the_command_quietly(setup, command):
    """status, check-config, search and explain writing into a pipe nobody reads: exit 1 and no
    traceback (Python's BrokenPipeError used to come out as one, twice with the flush)."""
    setup.write()
    args = {
        "search": ["search", "anything"],
        "explain": ["explain", str(setup.inbox / "a.wav")],
    }.get(command, [command])
    read, write = os.pipe()
    os.close(read)
    try:
        done = subprocess.run(
            [sys.executable, "-m", "dropscribe", *args, "-c", str(setup.config_path)],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **setup.env},
            timeout=60,
            check=False,
        )
    finally:
        os.close(write)
    assert "Traceback" not in done.stderr
    assert "BrokenPipe" not in done.stderr
    assert done.returncode == 1, done.stderr
