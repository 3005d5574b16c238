"""status says why: each endpoint's state, each file not done with its reason and what to
do (also as --json), and explain is right about failed and quarantined files."""

from __future__ import annotations

import json
import os
import signal

from conftest import API_KEY, DaemonProcess, make_wav


def test_status_shows_a_paused_endpoint_and_its_files_waiting_with_the_reason(setup):
    """With a wrong key the endpoint is paused: status --json says so (why, next probe),
    and the file is waiting for it with that reason, not uploading."""
    wav = make_wav(setup.inbox / "hello.wav")
    daemon = DaemonProcess(setup, env={"DROPSCRIBE_TEST_KEY": "sk-wrong"})
    try:
        daemon.wait_event("endpoint.paused")
        found = json.loads(setup.command("status", "--json").stdout)
        assert found["version"] == 1
        assert found["daemon"] == {"running": True, "pid": daemon.proc.pid}
        [endpoint] = found["endpoints"]
        assert endpoint["name"] == "local"
        assert endpoint["state"] == "paused"
        assert endpoint["status"] == 401
        assert endpoint["next_probe"]
        [item] = found["files"]
        assert item["path"] == str(wav)
        assert item["state"] == "waiting"
        assert "endpoint local paused" in item["reason"]
        assert f"kill -HUP {daemon.proc.pid}" in item["action"]
        assert found["inboxes"][0]["counts"]["waiting"] == 1
        text = setup.command("status").stdout
        assert "local: paused" in text
        assert "uploading" not in text.split("files not done:")[1]
    finally:
        daemon.signal(signal.SIGTERM)
        assert daemon.wait() == 0


def test_status_and_explain_show_a_quarantined_recording(setup):
    """A quarantined recording is listed by status with its reason and the retry line;
    explain calls the copy in failed/ a quarantined copy of the original, and both exit
    1 (failed), as --help says."""
    (setup.inbox / "bad.wav").write_bytes(os.urandom(5000))
    assert DaemonProcess(setup, "once").wait() == 1
    copy = setup.inbox / "failed" / "bad.wav"
    assert copy.is_file()
    found = json.loads(setup.command("status", "--json").stdout)
    [item] = found["files"]
    assert item["state"] == "quarantined"
    assert item["path"] == str(copy)
    assert item["source"] == str(setup.inbox / "bad.wav")
    assert "not a readable audio file" in item["reason"]
    assert "dropscribe retry" in item["action"]
    explained = setup.command("explain", str(copy))
    assert explained.returncode == 1
    assert f"quarantined copy of {setup.inbox / 'bad.wav'}" in explained.stdout
    assert "not seen yet" not in explained.stdout
    original = setup.command("explain", str(setup.inbox / "bad.wav"))
    assert original.returncode == 1
    assert "ledger: failed" in original.stdout


def test_explain_lists_the_sidecar_names_the_file_really_has(setup):
    """Two recordings with one stem and a {stem} template: explain names the sidecar each
    really got, not the template's name that the other one took."""
    setup.data["defaults"]["name_template"] = "{stem}.{ext}"
    setup.data["defaults"]["formats"] = ["txt"]
    make_wav(setup.inbox / "talk.wav")
    make_wav(setup.inbox / "talk.flac.wav", freq=880)
    (setup.inbox / "talk.flac.wav").rename(setup.inbox / "talk.mp3")
    assert DaemonProcess(setup, "once").wait() == 0
    names = sorted(p.name for p in setup.inbox.iterdir() if p.suffix == ".txt")
    assert len(names) == 2, names
    shown = set()
    for source in ("talk.wav", "talk.mp3"):
        explained = setup.command("explain", str(setup.inbox / source))
        assert explained.returncode == 0
        [line] = [x for x in explained.stdout.splitlines() if "sidecars:" in x]
        shown.add(line.split("sidecars:")[1].split(" in ")[0].strip())
    assert sorted(shown) == names


assert API_KEY  # the key the fake server takes (the paused test sends another)
