"""What ``service install`` changes on the host, each a ``Step`` that says what it does
(as the shell command a person would type) and does it: the unit's groups, the
folders the units expect (the inbox group's, 2775), and undoing them.

It runs as root, on folders others may write beside (an inbox's parent is often the
inbox group's). So a folder is never changed by name: it is opened with no symbolic
link anywhere on its way (``beneath``, from ``/``) and changed through that descriptor
(fchown, fchmod), and a folder the config names through a link is refused outright
(``linked``): the config loader follows links, so the folder install would change,
and open to the service, is wherever the link points."""

from __future__ import annotations

import errno
import grp
import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe import beneath
from dropscribe.commands import unitfile
from dropscribe.commands.console import say
from dropscribe.config import document, files

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
        if (was := held(folder)) is not None:
            if group and not _grouped(was, group):
                if all(r["path"] != str(folder) for r in regrouped):
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


def _grouped(held: os.stat_result, group: str) -> bool:
    """The folder ``held`` describes is the group's, group-writable and setgid already."""
    owner = exists(grp.getgrnam, group) and held.st_gid == grp.getgrnam(group).gr_gid
    return owner and held.st_mode & 0o2070 == 0o2070


def opened(folder: Path) -> int:
    """The folder ``folder`` (absolute) opened with no symbolic link anywhere on its
    way or at its end (OSError ELOOP), nor anything but a folder (ENOTDIR)."""
    top = os.open("/", beneath.DIRECTORY | os.O_CLOEXEC)
    try:
        return beneath.open_dir(top, folder.relative_to("/"))
    except OSError as exc:  # named from / (beneath names it from the descriptor)
        raise OSError(exc.errno, exc.strerror, str(Path("/", exc.filename or ""))) from None
    finally:
        os.close(top)


def held(folder: Path) -> os.stat_result | None:
    """What the folder is now (opened as ``opened`` does); None if it does not exist."""
    try:
        fd = opened(folder)
    except FileNotFoundError:
        return None
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def regrouping(folder: Path, group: str) -> Step:
    def regroup() -> None:
        fd = opened(folder)
        try:
            os.fchown(fd, -1, grp.getgrnam(group).gr_gid)
            os.fchmod(fd, os.fstat(fd).st_mode & 0o7777 | 0o2070)
        finally:
            os.close(fd)

    return Step(f"chgrp {group} {folder} && chmod g+rwxs {folder}", regroup)


def restoring(was: dict[str, Any], group: str | None) -> Step:
    folder = Path(was["path"])

    def restore() -> None:
        try:
            fd = opened(folder)
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            say(f"left {folder} as it is: a symbolic link now, not the folder install changed")
            return
        try:
            if group and _grouped(os.fstat(fd), group):  # still as install left it
                os.fchown(fd, -1, was["gid"])
                os.fchmod(fd, was["mode"])
        finally:
            os.close(fd)

    return Step(f"chgrp {was['gid']} {folder} && chmod {was['mode']:o} {folder}", restore)


def making(folder: Path, mode: str, group: str | None) -> Step:
    return Step(f"install -d {mode} {folder}", lambda: _mkdir(folder, group))


def removal(folder: Path) -> Step:
    return Step(f"rmdir {folder} (if empty)", lambda: rmdir(folder))


def _mkdir(folder: Path, group: str | None) -> None:
    """``mkdir -p``, one mkdirat at a time, never through a link; the last one the group's."""
    top = os.open("/", beneath.DIRECTORY | os.O_CLOEXEC)
    try:
        fd = beneath.make_dirs(top, folder.relative_to("/"))
    finally:
        os.close(top)
    try:
        if group:
            os.fchown(fd, -1, grp.getgrnam(group).gr_gid)
            os.fchmod(fd, 0o2775)
    finally:
        os.close(fd)


def rmdir(folder: Path) -> None:
    """``rmdir folder``, in its parent opened with no link on the way; kept if not empty."""
    try:
        fd = opened(folder.parent)
    except FileNotFoundError:
        return
    except OSError as exc:
        say(f"kept {folder}: {exc.strerror}")
        return
    try:
        if stat.S_ISLNK(os.stat(folder.name, dir_fd=fd, follow_symlinks=False).st_mode):
            say(f"kept {folder}: a symbolic link, not a folder install made")
            return
        os.rmdir(folder.name, dir_fd=fd)
    except FileNotFoundError:
        pass
    except OSError:
        say(f"kept {folder}: not empty")
    finally:
        os.close(fd)


def linked(cfg: Config) -> list[str]:
    """The folders the config names (as it spells them, before the loader followed
    their links) that lead through a symbolic link: each a problem naming the link."""
    raw = document.parse(files.read(cfg.source).decode("utf-8"), str(cfg.source)).raw
    base = cfg.source.parent.resolve()
    named: list[tuple[str, str, Path]] = []  # (key, value, relative to)
    if isinstance(raw.get("state_dir"), str):
        named.append(("state_dir", raw["state_dir"], base))
    defaults = raw.get("defaults") if isinstance(raw.get("defaults"), dict) else {}
    layers = [("defaults", defaults)]
    for index, inbox in enumerate(raw.get("inboxes") or []):
        if not isinstance(inbox, dict) or not isinstance(inbox.get("path"), str):
            continue
        where = f"inboxes[{index}]"
        named.append((f"{where}.path", inbox["path"], base))
        path = files.expanded(inbox["path"], base)
        for key, default in (("failed_dir", "failed"), ("done_dir", "done")):
            value = inbox.get(key, default)
            named += [(f"{where}.{key}", value, path)] if isinstance(value, str) else []
        layers.append((where, inbox))
        rules: list[Any] = inbox["rules"] if isinstance(inbox.get("rules"), list) else []
        layers += [(f"{where}.rules[{i}]", r) for i, r in enumerate(rules) if isinstance(r, dict)]
    for where, layer in layers:
        if isinstance(layer.get("output_dir"), str):
            named.append((f"{where}.output_dir", layer["output_dir"], base))
    problems = []
    for key, value, relative in named:
        link = _link_on_way(files.expanded(value, relative))
        if link is not None:
            problems.append(
                f"{key}: {value} leads through the symbolic link {link} (to"
                f" {link.readlink()}): service install changes these folders as root"
                " and opens them to the service; name the real folder in the config"
            )
    return problems


def _link_on_way(path: Path) -> Path | None:
    """The first symbolic link on the way to ``path`` (absolute), if there is one."""
    here = Path(path.anchor)
    for part in path.parts[1:]:
        if part == "..":
            here = here.parent  # the folder before was checked: no link
            continue
        here /= part
        try:
            if stat.S_ISLNK(os.lstat(here).st_mode):
                return here
        except (FileNotFoundError, NotADirectoryError):
            return None  # the rest is to be made, through no link (make_dirs)
    return None


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
