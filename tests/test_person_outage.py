"""An outage never quarantines: ``once`` against an endpoint nobody answers leaves the
recordings where they were and exits 3 ("not done: endpoint unreachable")."""

from __future__ import annotations

from conftest import DaemonProcess, make_wav

UNREACHABLE = "http://127.0.0.1:1/v1"  # port 1: connection refused


def test_once_leaves_files_in_place_and_exits_3_when_the_endpoint_is_unreachable(setup):
    """once with a dead base_url quarantines nothing, keeps each file, and exits 3."""
    setup.data["endpoints"]["local"]["base_url"] = UNREACHABLE
    recordings = [make_wav(setup.inbox / f"hello{n}.wav") for n in range(3)]
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait() == 3
    assert not daemon.named("file.failed")
    assert not (setup.inbox / "failed").exists()
    assert all(path.is_file() for path in recordings)
    waiting = daemon.named("file.waiting")
    assert sorted(e["path"] for e in waiting) == sorted(str(p) for p in recordings)
    assert all(e["quarantined"] is False and "unreachable" in e["reason"] for e in waiting)
    # the tries found no server: they cost the files none of their attempts
    assert {e["attempt"] for e in daemon.named("upload.started")} == {1}


def test_once_after_an_outage_sends_the_file_when_the_endpoint_is_back(setup):
    """The next once, with the endpoint back, transcribes the file left in place."""
    good = setup.data["endpoints"]["local"]["base_url"]
    setup.data["endpoints"]["local"]["base_url"] = UNREACHABLE
    wav = make_wav(setup.inbox / "hello.wav")
    assert DaemonProcess(setup, "once").wait() == 3
    setup.data["endpoints"]["local"]["base_url"] = good
    daemon = DaemonProcess(setup, "once")
    assert daemon.wait() == 0
    assert [e["path"] for e in daemon.named("file.done")] == [str(wav)]
    assert {e["attempt"] for e in daemon.named("upload.started")} == {1}


def test_a_wrong_key_costs_the_file_no_attempts_across_runs_of_once(setup):
    """Each once with a wrong key leaves the file's attempts as they were: the next run
    still sends attempt 1 (never attempt=7 against a maximum of 5)."""
    make_wav(setup.inbox / "hello.wav")
    wrong = {"DROPSCRIBE_TEST_KEY": "sk-wrong"}
    for _ in range(3):
        daemon = DaemonProcess(setup, "once", env=wrong)
        assert daemon.wait() == 1
        assert {e["attempt"] for e in daemon.named("upload.started")} == {1}
    assert (setup.inbox / "hello.wav").is_file()
