"""Event lines as journald reads them: a syslog priority before each line on its stream."""

from __future__ import annotations

import json
import os

import structlog

from dropscribe.ops import log


def lines_written(monkeypatch, *, journal: bool) -> list[str]:
    """Configure logging onto a pipe (named as the journal's stream if ``journal``), log
    one event per level, and return the lines the pipe got."""
    read_fd, write_fd = os.pipe()
    stream = os.fdopen(write_fd, "w")
    st = os.fstat(write_fd)
    if journal:
        monkeypatch.setenv("JOURNAL_STREAM", f"{st.st_dev}:{st.st_ino}")
    else:
        monkeypatch.setenv("JOURNAL_STREAM", "1:2")  # another stream: a redirected stderr
    try:
        log.configure("json", "debug", stream=stream)
        logger = structlog.get_logger("dropscribe")
        logger.debug("a.debug")
        logger.info("a.info")
        logger.warning("a.warning")
        logger.error("a.error")
        stream.close()
        with os.fdopen(read_fd) as reader:
            return reader.read().splitlines()
    finally:
        log.configure("json", "debug", stream=__import__("sys").stderr)


def test_on_the_journals_stream_each_line_carries_its_priority(monkeypatch):
    """stderr is JOURNAL_STREAM: <7> debug, <6> info, <4> warning, <3> error, then JSON."""
    lines = lines_written(monkeypatch, journal=True)
    assert [line[:3] for line in lines] == ["<7>", "<6>", "<4>", "<3>"]
    assert [json.loads(line[3:])["event"] for line in lines] == [
        "a.debug",
        "a.info",
        "a.warning",
        "a.error",
    ]


def test_elsewhere_lines_are_plain_json(monkeypatch):
    """Redirected to a file or a pipe that is not the journal's, every line is JSON."""
    lines = lines_written(monkeypatch, journal=False)
    assert [json.loads(line)["level"] for line in lines] == ["debug", "info", "warning", "error"]
