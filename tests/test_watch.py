"""How inboxes are watched: inotify locally, polling on network/FUSE shares or when inotify runs out."""

from __future__ import annotations

import errno
import shutil
import threading
from pathlib import Path

import pytest
from watchdog.observers import Observer

from conftest import API_KEY, make_wav, named, wait_for
from dropscribe.ingest.watcher import Watcher, filesystem_type, watch_mode
from dropscribe.outputs import sidecar
from dropscribe.service import Daemon
from dropscribe.vocab.config import Inbox

MOUNTINFO = """\
22 27 0:21 / /proc rw,relatime - proc proc rw
27 1 254:1 / / rw,relatime - ext4 /dev/vda1 rw
40 27 0:45 / /srv/nas rw,relatime - nfs4 nas:/export rw,vers=4.2
41 27 0:46 / /srv/nas/local rw,relatime - ext4 /dev/vdb1 rw
42 27 0:47 / /mnt/my\\040drive rw - fuse.sshfs me@host: rw
43 27 0:48 / /mnt/office rw - cifs //office/share rw
"""


def inbox(path: str, watch: str = "auto") -> Inbox:
    return Inbox(
        "in",
        Path(path),
        recursive=True,
        include=("*.wav",),
        exclude=(),
        layers=(),
        watch=watch,
        poll_seconds=0.2,
    )


def test_filesystem_type_uses_the_longest_mount_point():
    """The deepest mount containing the path decides; escaped spaces are understood."""
    assert filesystem_type(Path("/home/me/in"), MOUNTINFO) == "ext4"
    assert filesystem_type(Path("/srv/nas/rec"), MOUNTINFO) == "nfs4"
    assert filesystem_type(Path("/srv/nas/local/rec"), MOUNTINFO) == "ext4"
    assert filesystem_type(Path("/mnt/my drive/x"), MOUNTINFO) == "fuse.sshfs"
    assert filesystem_type(Path("/srv/nasty"), MOUNTINFO) == "ext4"


def test_auto_polls_network_and_fuse_filesystems_and_says_why():
    """auto: inotify on local filesystems, polling on NFS, SMB and FUSE; explicit modes win."""
    assert watch_mode(inbox("/x"), "ext4") == ("native", "ext4 is local")
    for fstype in ("nfs4", "cifs", "fuse.sshfs", "9p"):
        mode, why = watch_mode(inbox("/x"), fstype)
        assert mode == "poll"
        assert fstype in why
    assert watch_mode(inbox("/x", "native"), "nfs4") == ("native", "configured")
    assert watch_mode(inbox("/x", "poll"), "ext4") == ("poll", "configured")


class ExhaustedObserver(Observer):  # type: ignore[misc,valid-type]
    """inotify as it behaves when fs.inotify.max_user_watches is used up."""

    def start(self) -> None:
        raise OSError(errno.ENOSPC, "inotify watch limit reached")


def test_inotify_limit_falls_back_to_polling_and_reports_the_sysctl(tmp_path, events):
    """Running out of inotify watches is reported with the sysctl to raise; the inbox is
    polled (once its first snapshot is taken, in the background: the owner is told, to
    rescan what came before it)."""
    hints = []
    polling = threading.Event()
    watcher = Watcher(
        (inbox(str(tmp_path)),), hints.append, native=ExhaustedObserver, on_polling=polling.set
    )
    watcher.start()
    try:
        wait_for(polling.is_set, what="the first snapshot")
        make_wav(tmp_path / "late.wav")
        wait_for(lambda: any(h[0] == tmp_path / "late.wav" for h in hints), what="polled hint")
    finally:
        watcher.stop()
    limit = named(events, "inbox.watch_limit")[0]
    assert "fs.inotify.max_user_watches" in limit["fix"]
    assert named(events, "inbox.watching")[0]["mode"] == "poll"


def test_polled_inbox_end_to_end(setup, events):
    """watch: poll transcribes files like inotify does."""
    setup.data["inboxes"][0].update(watch="poll", poll_seconds=0.2)
    with setup.daemon():
        wait_for(lambda: named(events, "inbox.watching"), what="watching")
        make_wav(setup.inbox / "polled.wav")
        wait_for(lambda: named(events, "file.done"), what="done")
    assert named(events, "inbox.watching")[0]["mode"] == "poll"
    assert (setup.inbox / "polled.txt").exists()


def test_writing_a_sidecar_gives_one_hint_under_its_name(tmp_path):
    """An atomic sidecar write is heard as its final name only: the unnamed file's
    write and close events (``#inode``) and temp names never become hints."""
    hints: list = []
    watcher = Watcher((inbox(str(tmp_path)),), hints.append)
    watcher.start()
    try:
        sidecar.write_all({tmp_path / "a.txt": b"hello\n"})
        make_wav(tmp_path / "last.wav")  # heard after the sidecar's events
        wait_for(lambda: any(h[0].name == "last.wav" for h in hints), 10, what="last.wav")
    finally:
        watcher.stop()
    names = {h[0].name for h in hints if h[0].name != "last.wav"}
    assert names == {"a.txt"}


@pytest.fixture(params=["auto", "poll"])
def watching(request, tmp_path, events):
    """A started Watcher on the folder ``in`` (inotify, or polling: its first snapshot
    taken), its inbox and the hints it records."""
    folder = tmp_path / "in"
    folder.mkdir()
    hints: list = []
    watched = inbox(str(folder), request.param)
    watcher = Watcher((watched,), hints.append)
    watcher.start()
    wait_for(lambda: named(events, "inbox.watching"), 10, what="watching")
    yield folder, watched, watcher, hints
    watcher.stop()


def heard(hints: list, path: Path) -> None:
    wait_for(lambda: any(h[0] == path for h in hints), 10, what=f"a hint for {path.name}")


def test_a_removed_inbox_is_reported_once_and_watched_again_when_back(watching, events):
    """An inbox folder that disappears is reported once (inbox.missing); when it is
    back, the health check watches it again and says to rescan it."""
    folder, watched, watcher, hints = watching
    assert watcher.revive() == []
    shutil.rmtree(folder)
    assert watcher.revive() == []
    assert watcher.revive() == []
    assert len(named(events, "inbox.missing")) == 1
    assert watcher.watched() == {"in": False}
    folder.mkdir()
    assert watcher.revive() == [watched]
    wait_for(lambda: len(named(events, "inbox.watching")) == 2, 10, what="watching again")
    assert watcher.watched() == {"in": True}
    assert named(events, "inbox.watch_lost")[0]["why"] == "folder back"
    make_wav(folder / "back.wav")
    heard(hints, folder / "back.wav")


def test_an_inbox_folder_replaced_between_looks_is_watched_again(watching, events):
    """A folder removed and made again between two health checks (a sync tool
    recreating it) is a new folder that inotify does not watch: it is watched again
    (a polled inbox goes on by its path)."""
    folder, watched, watcher, hints = watching
    shutil.rmtree(folder)
    folder.mkdir()  # often with the old folder's inode number
    if watched.watch == "auto":  # inotify's watch went with the old folder
        wait_for(lambda: watcher.revive() == [watched], 10, what="the health check's look")
        whys = {e["why"] for e in named(events, "inbox.watch_lost")}
        assert whys <= {"folder replaced", "watch stopped"}
    elif watcher.revive():  # polling goes by the path; it is restarted only if the inode is new
        wait_for(lambda: len(named(events, "inbox.watching")) == 2, 10, what="watching again")
    assert not named(events, "inbox.missing")
    make_wav(folder / "new.wav")
    heard(hints, folder / "new.wav")


def test_daemon_transcribes_into_an_inbox_that_was_removed_and_made_again(setup, events):
    """The daemon notices its inbox folder was replaced and transcribes a file dropped
    into the new folder without waiting for the periodic rescan."""
    setup.data["rescan_seconds"] = 3600
    with setup.daemon():
        wait_for(lambda: named(events, "inbox.watching"), what="watching")
        shutil.rmtree(setup.inbox)
        setup.inbox.mkdir()
        make_wav(setup.inbox / "after.wav")
        wait_for((setup.inbox / "after.txt").exists, 20, what="after.txt")
    assert named(events, "inbox.watch_lost")[0]["why"] in {
        "folder replaced",
        "folder back",
        "watch stopped",
    }


def test_a_reload_whose_new_inbox_cannot_be_watched_keeps_the_running_config(
    setup, events, monkeypatch
):
    """A reload adding an inbox whose watch cannot start (here: refused) is refused
    with that reason (config.reload_failed); the running inbox goes on being served."""
    second = setup.root / "second"
    second.mkdir()
    real = Watcher._observe

    def observe(self, box, mode, why):
        if box.path == second:
            raise OSError(errno.EACCES, "Permission denied")
        return real(self, box, mode, why)

    monkeypatch.setattr(Watcher, "_observe", observe)
    monkeypatch.setenv("DROPSCRIBE_TEST_KEY", API_KEY)  # a reload reads the environment
    asked = threading.Event()

    def reload() -> bool:
        if asked.is_set():
            asked.clear()
            return True
        return False

    daemon, stop = Daemon(setup.load()), threading.Event()
    thread = threading.Thread(target=daemon.run, args=(stop,), kwargs={"reload": reload})
    thread.start()
    try:
        wait_for(lambda: named(events, "daemon.started"), what="started")
        setup.data["inboxes"].append({"path": str(second)})
        setup.write()
        asked.set()
        wait_for(lambda: named(events, "config.reload_failed"), what="the refused reload")
        make_wav(setup.inbox / "still.wav")
        wait_for((setup.inbox / "still.txt").exists, 20, what="still.txt")
    finally:
        stop.set()
        thread.join(30)
    assert not thread.is_alive()
    (problem,) = named(events, "config.reload_failed")[0]["problems"]
    assert problem == f"cannot watch inbox {second}: Permission denied"
    assert not named(events, "config.reloaded")


def test_a_finished_recording_moved_in_goes_at_once_and_a_fresh_one_settles(setup, events):
    """A native watch releases a file moved in whose last write is older than its settle
    time at once (as a scan does); a file written just now still waits its settle time."""
    import os
    import time

    setup.data["defaults"]["settle_seconds"] = 60  # longer than the deadline below
    old = make_wav(setup.root / "old.wav")
    an_hour_ago = time.time() - 3600
    os.utime(old, (an_hour_ago, an_hour_ago))
    with setup.daemon():
        wait_for(lambda: named(events, "inbox.watching"), what="watching")
        make_wav(setup.inbox / "fresh.wav")  # written now: its mtime is now
        old.rename(setup.inbox / "old.wav")  # a sync tool's final rename
        wait_for(lambda: named(events, "file.done"), timeout=30, what="the old file")
        assert [e["path"] for e in named(events, "file.settled")] == [
            str(setup.inbox / "old.wav")
        ], "the fresh file waits its 60 s"
    assert named(events, "inbox.watching")[0]["mode"] == "native"


def test_only_a_native_watch_vouches_for_the_files_mtime(watching):
    """Hints from inotify carry the time they were heard (the file's mtime is on this
    host's clock); hints from polling, which serves network shares, carry none."""
    folder, watched, _, hints = watching
    make_wav(folder / "a.wav")
    heard(hints, folder / "a.wav")
    times = {h.heard_at is not None for h in hints if h.path == folder / "a.wav"}
    assert times == {watched.watch == "auto"}  # auto is inotify on the test's folder
