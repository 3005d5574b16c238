"""What ``service install`` changes on the host, each a ``Step`` that says what it does
(as the shell command a person would type) and does it: the unit's groups, the
folders the units expect (the inbox group's, 2775), and undoing them."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe.commands import unitfile
from dropscribe.commands.console import say

if TYPE_CHECKING:
    from collections.abc import Callable

    from dropscribe.vocab.config import Config


@dataclass(frozen=True)
class Step:
    what: str  # as the shell command (or the file) a person would use
    do: Callable[[], None]


def groups(settings: list[tuple[str, str]], unit: str, made: dict[str, Any]) -> list[Step]:
    """The unit's SupplementaryGroups= made, and a fixed User= added to them."""
    groups = [
        unitfile.expand(g, unit)
        for key, value in settings
        if key == "SupplementaryGroups"
        for g in value.split()
    ]
    dynamic = ("DynamicUser", "yes") in settings  # its user joins them by SupplementaryGroups=
    users = [] if dynamic else [unitfile.expand(v, unit) for k, v in settings if k == "User" and v]
    steps = []
    for group in groups:
        if not exists(grp.getgrnam, group):
            made["group"] = group
            steps.append(
                Step(f"groupadd --system {group}", command(["groupadd", "--system", group]))
            )
        for user in users:
            if exists(pwd.getpwnam, user) and not _member(user, group):
                made["members"].append([user, group])
                steps.append(
                    Step(
                        f"usermod -a -G {group} {user}",
                        command(["usermod", "-a", "-G", group, user]),
                    )
                )
    return steps


def folders(
    cfg: Config, settings: list[tuple[str, str]], unit: str, made: dict[str, Any]
) -> list[Step]:
    """Inbox and output folders as the units expect: the group's, group-writable and
    setgid (2775); a missing one made, an existing one's group and mode changed (and
    what they were kept, for uninstall)."""
    group = next(
        (
            unitfile.expand(v.split()[0], unit)
            for k, v in settings
            if k == "SupplementaryGroups" and v
        ),
        None,
    )
    steps = []
    regrouped = made.setdefault("regrouped", [])
    made["folder_group"] = group
    for folder in unitfile.folders(cfg):
        if folder == cfg.state_dir:
            continue
        if folder.is_dir():
            if group and not _grouped(folder, group):
                if all(r["path"] != str(folder) for r in regrouped):
                    was = folder.stat()
                    regrouped.append(
                        {"path": str(folder), "gid": was.st_gid, "mode": was.st_mode & 0o7777}
                    )
                steps.append(regrouping(folder, group))
            continue
        missing = [p for p in (*reversed(folder.parents), folder) if not p.exists()]
        made["folders"] += [str(p) for p in missing if str(p) not in made["folders"]]
        mode = f"-g {group} -m 2775" if group else "-m 0755"
        steps.append(making(folder, mode, group))
    return steps


def _grouped(folder: Path, group: str) -> bool:
    """``folder`` is the group's, group-writable and setgid already."""
    held = folder.stat()
    owner = exists(grp.getgrnam, group) and held.st_gid == grp.getgrnam(group).gr_gid
    return owner and held.st_mode & 0o2070 == 0o2070


def regrouping(folder: Path, group: str) -> Step:
    def regroup() -> None:
        os.chown(folder, -1, grp.getgrnam(group).gr_gid)
        folder.chmod(folder.stat().st_mode & 0o7777 | 0o2070)

    return Step(f"chgrp {group} {folder} && chmod g+rwxs {folder}", regroup)


def restoring(was: dict[str, Any], group: str | None) -> Step:
    folder = Path(was["path"])

    def restore() -> None:
        if group and folder.is_dir() and _grouped(folder, group):  # still as install left it
            os.chown(folder, -1, was["gid"])
            folder.chmod(was["mode"])

    return Step(f"chgrp {was['gid']} {folder} && chmod {was['mode']:o} {folder}", restore)


def making(folder: Path, mode: str, group: str | None) -> Step:
    return Step(f"install -d {mode} {folder}", lambda: _mkdir(folder, group))


def removal(folder: Path) -> Step:
    return Step(f"rmdir {folder} (if empty)", lambda: rmdir(folder))


def _mkdir(folder: Path, group: str | None) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    if group:
        os.chown(folder, -1, grp.getgrnam(group).gr_gid)
        folder.chmod(0o2775)


def rmdir(folder: Path) -> None:
    try:
        folder.rmdir()
    except FileNotFoundError:
        pass
    except OSError:
        say(f"kept {folder}: not empty")


def exists(lookup: Callable[[str], object], name: str) -> bool:
    try:
        lookup(name)
    except KeyError:
        return False
    return True


def _member(user: str, group: str) -> bool:
    return (
        user in grp.getgrnam(group).gr_mem
        or pwd.getpwnam(user).pw_gid == grp.getgrnam(group).gr_gid
    )


def run(argv: list[str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - a fixed argv, no shell
        argv, capture_output=True, text=True, check=False, stdin=subprocess.DEVNULL
    )


def must(argv: list[str]) -> None:
    done = run(argv)
    if done.returncode != 0:
        raise subprocess.CalledProcessError(done.returncode, argv, done.stdout, done.stderr.strip())


def command(argv: list[str]) -> Callable[[], None]:
    return lambda: must(argv)
