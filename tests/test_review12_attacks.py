"""Attacks on ``service install``/``uninstall``, which run as root and change the group and
mode of the config's folders: a symbolic link planted in place of an inbox, of a parent
of one, of an output folder's parent or of the state dir, pointing at a folder or file
of another user's (or /etc), and a folder swapped for such a link between install's
check and its chown. Each is refused, naming the path, and the target is left exactly
as it was. Run as test_svc_install.py runs the command (its fake systemctl, real files
in a temporary root)."""

from __future__ import annotations

import json
import os
import pwd
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml

import test_svc_install
from dropscribe.commands import provision, service, unitfile
from test_svc_install import command, configured

# test_svc_install's fixtures: a temporary root with the host's files, and the fake systemd.
root = test_svc_install.root
host = test_svc_install.host

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="service install runs as root")
NOBODY = pwd.getpwnam("nobody").pw_uid


def owned(path: Path) -> tuple[int, int, int]:
    """Owner, group and mode of ``path`` itself (a link not followed)."""
    st = path.lstat()
    return st.st_uid, st.st_gid, st.st_mode


def victim_dir(root: Path, name: str = "victim") -> Path:
    """A folder of another user's (nobody, 0750, root's group) with a file in it."""
    folder = root / name
    folder.mkdir()
    (folder / "inbox").mkdir()
    (folder / "secret").write_text("theirs")
    for path in (folder, folder / "inbox", folder / "secret"):
        os.chown(path, NOBODY, 0)
        path.chmod(0o750)
    return folder


def swapped_for_link(folder: Path, target: Path) -> None:
    """``folder`` (empty) replaced by a symbolic link to ``target``."""
    shutil.rmtree(folder)
    folder.symlink_to(target)


def config_with(config: Path, **top: Any) -> None:
    """The config at ``config`` with top-level keys added."""
    data = yaml.safe_load(config.read_text())
    config.write_text(yaml.safe_dump({**data, **top}))


def untouched(host: test_svc_install.FakeSystemd) -> None:
    """No drop-in, no manifest, no systemctl daemon-reload: nothing was installed."""
    assert not unitfile.dropin_path("dropscribe.service").exists()
    assert not service.MANIFESTS.joinpath("dropscribe.service.json").exists()
    assert ["systemctl", "daemon-reload"] not in host.calls


def test_an_inbox_that_is_a_link_to_another_users_folder_is_refused(host, root, capsys):
    """The inbox replaced by a link to a folder of nobody's: exit 2, the link named, the
    folder's owner, group and mode as they were, nothing installed."""
    config = configured(root)
    victim = victim_dir(root)
    inbox = root / "srv" / "inbox"
    swapped_for_link(inbox, victim)
    before = owned(victim)
    assert command(config, "install") == 2
    err = capsys.readouterr().err
    assert f"symbolic link {inbox}" in err
    assert "inboxes[0].path" in err
    assert owned(victim) == before
    untouched(host)


def test_an_output_folder_that_is_a_link_to_another_users_file_is_refused(host, root, capsys):
    """An output folder that is a link to a file of nobody's (an inbox must be a folder,
    the loader sees to that): refused, naming the link; the file unchanged."""
    config = configured(root)
    victim = victim_dir(root)
    (root / "texts").symlink_to(victim / "secret")
    config_with(
        config,
        defaults={"endpoint": "api", "model": "whisper-1", "output_dir": str(root / "texts")},
    )
    before = owned(victim / "secret")
    assert command(config, "install") == 2
    assert (
        f"output_dir: {root / 'texts'} leads through the symbolic link" in capsys.readouterr().err
    )
    assert owned(victim / "secret") == before
    assert (victim / "secret").read_text() == "theirs"
    untouched(host)


def test_an_inbox_under_a_linked_parent_is_refused(host, root, capsys):
    """A parent of the inbox replaced by a link to nobody's folder, which holds a folder
    of the inbox's name: refused, naming the parent link; nobody's folders unchanged."""
    config = configured(root)
    victim = victim_dir(root)
    swapped_for_link(root / "srv", victim)
    before = owned(victim / "inbox"), owned(victim)
    assert command(config, "install") == 2
    assert f"symbolic link {root / 'srv'}" in capsys.readouterr().err
    assert (owned(victim / "inbox"), owned(victim)) == before
    untouched(host)


def test_a_missing_output_folder_under_a_linked_parent_is_not_made_there(host, root, capsys):
    """An output folder still to be made, under a parent that is a link to nobody's
    folder: refused; nothing made in nobody's folder."""
    config = configured(root)
    victim = victim_dir(root)
    (root / "out").symlink_to(victim)
    config_with(
        config,
        defaults={"endpoint": "api", "model": "whisper-1", "output_dir": str(root / "out" / "new")},
    )
    assert command(config, "install") == 2
    assert f"symbolic link {root / 'out'}" in capsys.readouterr().err
    assert sorted(os.listdir(victim)) == ["inbox", "secret"]
    untouched(host)


def test_a_state_dir_that_is_a_link_is_refused(host, root, capsys):
    """state_dir a link to nobody's folder: refused (the drop-in would open the link's
    target to the service with ReadWritePaths=), nothing written."""
    config = configured(root)
    victim = victim_dir(root)
    (root / "state").symlink_to(victim)
    config_with(config, state_dir=str(root / "state"))
    before = owned(victim)
    assert command(config, "install") == 2
    err = capsys.readouterr().err
    assert f"state_dir: {root / 'state'} leads through the symbolic link" in err
    assert owned(victim) == before
    untouched(host)


def test_an_inbox_linked_to_etc_is_refused_even_in_a_dry_run(host, root, capsys):
    """The inbox a link to /etc: --dry-run (which changes nothing, so this is safe to
    try) refuses it as install would, instead of saying it would chgrp /etc."""
    config = configured(root)
    inbox = root / "srv" / "inbox"
    swapped_for_link(inbox, Path("/etc"))
    before = owned(Path("/etc"))
    assert command(config, "install", dry_run=True) == 2
    said = capsys.readouterr()
    assert f"symbolic link {inbox} (to /etc)" in said.err
    assert "chgrp" not in said.out
    assert owned(Path("/etc")) == before


def test_an_inbox_swapped_for_a_link_after_the_check_is_not_changed(
    host, root, capsys, monkeypatch
):
    """The inbox a real folder when install checks the config's folders, then swapped for
    a link to nobody's folder before the folders are looked at: refused, naming it."""
    config = configured(root)
    victim = victim_dir(root)
    inbox = root / "srv" / "inbox"
    checked = provision.linked

    def check_then_swap(cfg: Any) -> list[str]:
        found = checked(cfg)
        swapped_for_link(inbox, victim)
        return found

    monkeypatch.setattr(provision, "linked", check_then_swap)
    before = owned(victim)
    assert command(config, "install") != 0
    assert str(inbox) in capsys.readouterr().err
    assert owned(victim) == before
    untouched(host)


def test_an_inbox_swapped_for_a_link_between_plan_and_chown_is_not_changed(
    host, root, capsys, monkeypatch
):
    """The inbox swapped for a link to nobody's folder after install planned its steps
    and before it performs them: the chgrp step fails (the folder is opened with no link
    on its way and changed through that descriptor), exit non-zero, the path named."""
    config = configured(root)
    victim = victim_dir(root)
    inbox = root / "srv" / "inbox"
    perform = service._perform

    def swap_then_perform(steps: list[provision.Step], *, dry_run: bool) -> bool:
        swapped_for_link(inbox, victim)
        return perform(steps, dry_run=dry_run)

    monkeypatch.setattr(service, "_perform", swap_then_perform)
    before = owned(victim)
    assert command(config, "install") != 0
    err = capsys.readouterr().err
    assert f"chgrp {test_svc_install.GROUP} {inbox}" in err
    assert "a symbolic link on the way" in err
    assert owned(victim) == before
    assert ["systemctl", "daemon-reload"] not in host.calls


def test_uninstall_leaves_a_folder_that_is_now_a_link_alone(host, root, capsys):
    """Installed, then the inbox swapped for a link to nobody's folder that looks as
    install left the inbox (the group's, 2775): uninstall does not chgrp/chmod it back
    through the link; the rest is undone."""
    config = configured(root)
    victim = victim_dir(root)
    os.chown(victim, NOBODY, 100)
    victim.chmod(0o2775)
    assert command(config, "install") == 0
    made = json.loads(service.MANIFESTS.joinpath("dropscribe.service.json").read_text())
    assert made["regrouped"]
    inbox = root / "srv" / "inbox"
    swapped_for_link(inbox, victim)
    before = owned(victim)
    assert command(config, "uninstall") == 0
    assert owned(victim) == before
    assert f"left {inbox} as it is" in capsys.readouterr().out
    assert not unitfile.dropin_path("dropscribe.service").exists()
