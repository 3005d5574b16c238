"""attack19: a recording whose name is not UTF-8 (``bad\\xff\\xfe.wav``), quarantined:
``status`` matched its ledger row (the name as ``\\xNN`` text) to no quarantined copy
(the name's own bytes), and told it twice, once as failed, counted in both."""

from __future__ import annotations

import json
import os

from conftest import DaemonProcess


def test_status_tells_a_quarantined_recording_named_in_latin1_once(setup):
    """A file that is not audio, named with bytes 0xff 0xfe: after a run, status --json
    lists one entry, quarantined, with its source; counts failed 0, quarantined 1."""
    setup.write()
    (setup.inbox / os.fsdecode(b"bad\xff\xfe.wav")).write_bytes(b"not audio at all" * 100)
    daemon = DaemonProcess(setup, "once")
    daemon.wait(60)
    assert len(daemon.named("file.failed")) == 1
    done = setup.command("status", "--json")
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout)
    (entry,) = found["files"]
    assert entry["state"] == "quarantined"
    assert os.fsencode(entry["source"]) == os.fsencode(setup.inbox) + b"/bad\xff\xfe.wav"
    counts = found["inboxes"][0]["counts"]
    assert (counts["failed"], counts["quarantined"]) == (0, 1)
