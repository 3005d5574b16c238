"""``dropscribe service install|uninstall -c CONFIG``: the shipped unit set up for a config
(its folders writable, its key files loaded, the inbox group, ``dropscribe`` on PATH), then
checked as the service will run it, in its sandbox; and undone again, exactly."""

from __future__ import annotations

import grp
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dropscribe.commands import provision, unitfile
from dropscribe.commands.console import EXIT_CONFIG, EXIT_FAILED, EXIT_OK, fail, say
from dropscribe.errors import ConfigError
from dropscribe.loading import checked

if TYPE_CHECKING:
    import argparse

    from dropscribe.vocab.config import Config

MANIFESTS = unitfile.ETC / "installed"  # what each install made, for uninstall
LINK = Path("/usr/local/bin/dropscribe")
CREDENTIALS_FAILED = 243  # systemd's exit status when a LoadCredential= file cannot be read


def main(args: argparse.Namespace) -> int:
    config = Path(args.config).expanduser().absolute()
    try:
        unit = unitfile.unit_for(config)
    except unitfile.UnitError as exc:
        return fail(str(exc))
    if os.geteuid() != 0 and not args.dry_run:
        return fail(f"service {args.action} changes the system: run it as root")
    if args.action == "uninstall":
        return uninstall(unit, dry_run=args.dry_run)
    try:  # the keys are the service's to read (LoadCredential=), not this command's
        cfg = checked.load(config, keys=False)
    except ConfigError as exc:
        for problem in exc.problems:
            say(f"dropscribe: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    return install(cfg, unit, dry_run=args.dry_run)


def install(cfg: Config, unit: str, *, dry_run: bool) -> int:
    shown = provision.run(["systemctl", "cat", "--no-pager", unit])
    if shown.returncode != 0:
        template = unitfile.template_of(unit)
        return fail(
            f"{unit} is not installed: install -m 0644 systemd/{template}"
            f" {unitfile.UNITS}/ (from the checkout), then run this again"
        )
    own = unitfile.service_section(_without_ours(shown.stdout))
    loaded, problems = _keys(cfg, unitfile.credential_sources(own, unit))
    problems += [
        f"{folder}: the service cannot see this folder ({setting} in {unit}): move it"
        for folder in unitfile.folders(cfg)
        if (setting := unitfile.hidden(folder))
    ]
    problems += provision.linked(cfg)
    if problems:
        for problem in problems:
            say(f"dropscribe: {cfg.source}: {problem}", file=sys.stderr)
        return EXIT_CONFIG
    dropin = unitfile.dropin(cfg, loaded)
    settings = own + unitfile.service_section(dropin)
    # The check runs as the unit's own user: a DynamicUser= one is shared by name, so a
    # running service's state_dir stays its own.
    user = provision.run(["systemctl", "show", "--property=User", "--value", unit]).stdout.strip()
    if user and not any(key == "User" for key, _ in settings):
        settings.append(("User", user))
    exe = unitfile.executable(settings, unit) or str(Path(sys.executable).with_name("dropscribe"))
    made = _manifest(unit) or {"unit": unit, "folders": [], "members": []}
    made["config"] = str(cfg.source)
    try:  # a folder swapped for a link (or a file) since the check above: refused
        steps = [
            *provision.groups(settings, unit, made),
            *provision.folders(cfg, settings, unit, made),
        ]
    except OSError as exc:
        return fail(f"{exc.filename}: {exc.strerror}; nothing changed")
    steps += [
        _write(unitfile.dropin_path(unit), dropin, made),
        *_link(exe, made),
        provision.Step(
            "systemctl daemon-reload", lambda: provision.must(["systemctl", "daemon-reload"])
        ),
    ]
    done = _perform(steps, dry_run=dry_run)
    if not dry_run:
        _save(unit, made)  # what was made, even when a step failed: uninstall undoes it
    if not done:
        return EXIT_FAILED
    check = [
        "systemd-run",
        "--quiet",
        "--wait",
        "--pipe",
        "--collect",
        "--service-type=exec",
        *unitfile.sandbox(settings, unit),
        exe,
        "check-config",
        "-c",
        str(cfg.source),
    ]
    if dry_run:
        say(f"would check the config as {unit} runs it: {shlex.join(check)}")
        return EXIT_OK
    say(f"checking the config as {unit} runs it (its user and sandbox):")
    checked_run = provision.run(check)
    for line in (checked_run.stdout + checked_run.stderr).splitlines():
        say(line)
    if checked_run.returncode == CREDENTIALS_FAILED:
        return fail(f"a key file could not be loaded: {', '.join(str(c.path) for c in loaded)}")
    if checked_run.returncode != 0:
        return fail(f"{unit} would refuse this config: fix it, then run this again")
    active = provision.run(["systemctl", "is-active", unit]).stdout.strip() == "active"
    then = (
        "restart it to apply: systemctl restart" if active else "start it: systemctl enable --now"
    )
    say(f"installed; {then} {unit}")
    return EXIT_OK


def uninstall(unit: str, *, dry_run: bool) -> int:
    made = _manifest(unit)
    if made is None:
        say(f"nothing to undo: {unit} was not set up by dropscribe service install")
        return EXIT_OK
    others = sorted(p for p in MANIFESTS.glob("*.json") if p.name != f"{unit}.json")
    shared = {k: made.pop(k) for k in ("group", "link") if made.get(k)}
    steps: list[provision.Step] = []
    if others and shared:  # another unit still needs the group and the link
        steps.append(_handing(others[0], shared))
        shared = {}
    if (dropin := Path(made["dropin"])).exists():
        steps.append(provision.Step(f"rm {dropin}", dropin.unlink))
        steps.append(
            provision.Step(
                f"rmdir {dropin.parent} (if empty)", lambda: provision.rmdir(dropin.parent)
            )
        )
    if (link := shared.get("link")) and _links(Path(link["path"]), link["target"]):
        steps.append(provision.Step(f"rm {link['path']}", Path(link["path"]).unlink))
    steps += [provision.removal(Path(folder)) for folder in reversed(made["folders"])]
    steps += [
        provision.restoring(was, made.get("folder_group")) for was in made.get("regrouped", [])
    ]
    for user, group in made["members"]:
        steps.append(
            provision.Step(
                f"gpasswd -d {user} {group}", provision.command(["gpasswd", "-d", user, group])
            )
        )
    if (group := shared.get("group")) and provision.exists(grp.getgrnam, group):
        steps.append(provision.Step(f"groupdel {group}", provision.command(["groupdel", group])))
    manifest = MANIFESTS / f"{unit}.json"
    steps.append(provision.Step(f"rm {manifest}", manifest.unlink))
    steps.append(
        provision.Step(
            "systemctl daemon-reload", lambda: provision.must(["systemctl", "daemon-reload"])
        )
    )
    if not _perform(steps, dry_run=dry_run):
        return EXIT_FAILED
    if not dry_run and provision.run(["systemctl", "is-active", unit]).stdout.strip() == "active":
        say(f"{unit} still runs as it was started: systemctl disable --now {unit}")
    return EXIT_OK


def _keys(cfg: Config, sources: dict[str, Path]) -> tuple[list[unitfile.Credential], list[str]]:
    """The key files to load, and why the service could not run (a used one missing)."""
    loaded, problems = [], []
    for cred in unitfile.credentials(cfg, sources):
        if cred.path.is_file():
            loaded.append(cred)
        elif cred.used:
            problems.append(
                f"endpoints.{cred.endpoint}.api_key_file: key file {cred.path} does not exist"
                " (the service loads it with LoadCredential=)"
            )
    return loaded, problems


def _without_ours(shown: str) -> str:
    """``systemctl cat`` output without an earlier install's drop-in (replaced, not added)."""
    kept, ours = [], False
    for line in shown.splitlines():
        if line.startswith("# /"):
            ours = line.endswith("/" + unitfile.DROPIN)
        if not ours:
            kept.append(line)
    return "\n".join(kept) + "\n"


def _write(path: Path, text: str, made: dict[str, Any]) -> provision.Step:
    made["dropin"] = str(path)

    def write() -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        _replace(path, text)

    return provision.Step(f"write {path}:\n{text.rstrip()}", write)


def _replace(path: Path, text: str) -> None:
    """``path`` holds ``text`` (0644), whole or not at all: written beside it, renamed over."""
    partial = path.with_name(f".{path.name}.new")
    partial.write_text(text)
    partial.chmod(0o644)
    partial.replace(path)


def _link(exe: str, made: dict[str, Any]) -> list[provision.Step]:
    if _links(LINK, exe):
        return []
    if LINK.exists() or LINK.is_symlink():
        say(f"note: {LINK} is there already and is not a link to {exe}: left as it is")
        return []
    made["link"] = {"path": str(LINK), "target": exe}
    return [provision.Step(f"ln -s {exe} {LINK}", lambda: _symlink(exe))]


def _links(link: Path, target: str) -> bool:
    return link.is_symlink() and str(link.readlink()) == target


def _symlink(exe: str) -> None:
    LINK.parent.mkdir(parents=True, exist_ok=True)
    LINK.symlink_to(exe)


def _perform(steps: list[provision.Step], *, dry_run: bool) -> bool:
    """Each step said, then done (only said, with --dry-run); False after one fails."""
    for step in steps:
        for line in (f"would: {step.what}" if dry_run else step.what).splitlines():
            say(line)
        if dry_run:
            continue
        try:
            step.do()
        except subprocess.CalledProcessError as exc:
            say(f"dropscribe: {step.what.splitlines()[0]}: {exc.stderr}", file=sys.stderr)
            return False
        except OSError as exc:
            say(f"dropscribe: {step.what.splitlines()[0]}: {exc}", file=sys.stderr)
            return False
    return True


def _manifest(unit: str) -> dict[str, Any] | None:
    path = MANIFESTS / f"{unit}.json"
    try:
        made: dict[str, Any] = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    return made


def _save(unit: str, made: dict[str, Any]) -> None:
    MANIFESTS.mkdir(parents=True, exist_ok=True)
    _replace(MANIFESTS / f"{unit}.json", json.dumps(made, indent=2) + "\n")


def _handing(heir: Path, shared: dict[str, Any]) -> provision.Step:
    def hand() -> None:
        made = json.loads(heir.read_text())
        made.update(shared)
        _save(heir.name.removesuffix(".json"), made)

    return provision.Step(f"hand {', '.join(shared)} over to {heir}", hand)
