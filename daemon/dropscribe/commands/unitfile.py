"""The shipped unit and the drop-in ``service install`` writes for a config: which unit
runs the config, the folders and key files it needs, the drop-in's text, and the unit's
sandbox as ``systemd-run`` properties. Pure: values in, values out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from dropscribe.config import files, preflight, rules

if TYPE_CHECKING:
    from dropscribe.vocab.config import Config

ETC = Path("/etc/dropscribe")
UNITS = Path("/etc/systemd/system")
DROPIN = "dropscribe-install.conf"
INSTANCE = re.compile(r"[A-Za-z0-9_.-]+")
# The unit's settings that say what the service is, not how it is sandboxed: left out
# of the check's transient unit (which runs check-config once and ends).
LIFECYCLE = frozenset(
    {
        "Type",
        "NotifyAccess",
        "WatchdogSec",
        "ExecStart",
        "ExecStartPre",
        "ExecStartPost",
        "ExecStop",
        "ExecStopPost",
        "ExecReload",
        "ExecCondition",
        "Restart",
        "RestartSec",
        "RestartPreventExitStatus",
        "KillSignal",
        "TimeoutStopSec",
        "TimeoutStartSec",
        "SyslogIdentifier",
    }
)
# Folders a unit setting hides from the service whatever ReadWritePaths= says.
HIDDEN = (
    (Path("/tmp"), "PrivateTmp="),  # noqa: S108 - named, not used
    (Path("/var/tmp"), "PrivateTmp="),  # noqa: S108
    (Path("/dev"), "PrivateDevices="),
    (Path("/proc"), "ProtectProc="),
    (Path("/sys"), "ProtectKernelTunables="),
)


class UnitError(ValueError):
    """The config cannot be installed as a service; the message says why and what to do."""


def unit_for(config: Path) -> str:
    """The unit that reads ``config``: /etc/dropscribe/config.yaml is dropscribe.service,
    /etc/dropscribe/NAME.yaml is dropscribe@NAME.service."""
    if config.parent == ETC and config.suffix == ".yaml":
        if config.stem == "config":
            return "dropscribe.service"
        if INSTANCE.fullmatch(config.stem):
            return f"dropscribe@{config.stem}.service"
    raise UnitError(
        f"{config}: the service reads /etc/dropscribe/config.yaml (dropscribe.service) or"
        " /etc/dropscribe/NAME.yaml (dropscribe@NAME.service): put the config there"
    )


def template_of(unit: str) -> str:
    """dropscribe@NAME.service -> dropscribe@.service (a plain unit is its own)."""
    if "@" not in unit:
        return unit
    prefix, rest = unit.split("@", 1)
    return f"{prefix}@{rest[rest.index('.') :]}"


def dropin_path(unit: str) -> Path:
    return UNITS / f"{unit}.d" / DROPIN


def folders(config: Config) -> list[Path]:
    """Every folder the daemon writes: inboxes, output_dir, failed_dir and done_dir, a
    state_dir set in the config; outermost first, none inside another."""
    found = [inbox.path for inbox in config.inboxes]
    found += [Path(p) for p in rules.excluded_dirs(config) if _written(config, Path(p))]
    if config.state_dir != files.default_state_dir():
        found.append(config.state_dir)
    outermost: list[Path] = []
    for path in sorted(set(found), key=lambda p: (len(p.parts), str(p))):
        if not any(path == kept or kept in path.parents for kept in outermost):
            outermost.append(path)
    return outermost


def _written(config: Config, folder: Path) -> bool:
    """Whether ``folder`` (from excluded_dirs) is one written to, not a voices: folder."""
    return not any(
        layer.values.get("voices") == folder for inbox in config.inboxes for layer in inbox.layers
    )


def hidden(folder: Path) -> str | None:
    """The unit setting that hides ``folder`` from the service, if one does."""
    for top, setting in HIDDEN:
        if folder == top or top in folder.parents:
            return setting
    return None


@dataclass(frozen=True)
class Credential:
    """A key file passed to the service as ``LoadCredential=ID:PATH``."""

    name: str  # the credential's ID: the config's api_key_file, a bare file name
    path: Path  # the file it is loaded from, beside the config
    endpoint: str
    used: bool  # an inbox sends to this endpoint: the service cannot run without it


def credentials(config: Config, sources: dict[str, Path]) -> list[Credential]:
    """The key files the config names by a bare file name (read from
    $CREDENTIALS_DIRECTORY under systemd): where the unit loads that credential from
    (``sources``: the template's NAME.key), else the file of that name beside the config."""
    used = preflight.endpoints_used(config)
    return [
        Credential(
            ep.api_key_file,
            sources.get(ep.api_key_file, config.source.parent / ep.api_key_file),
            name,
            name in used,
        )
        for name, ep in sorted(config.endpoints.items())
        if ep.api_key_file and "/" not in ep.api_key_file
    ]


def credential_sources(settings: list[tuple[str, str]], unit: str) -> dict[str, Path]:
    """The unit's own ``LoadCredential=ID:PATH`` lines: ID -> PATH (specifiers expanded)."""
    found: dict[str, Path] = {}
    for key, value in settings:
        if key == "LoadCredential" and not value:
            found.clear()
        elif key == "LoadCredential" and ":" in value:
            name, path = value.split(":", 1)
            found[name] = Path(expand(path, unit))
    return found


def quoted(value: str) -> str:
    """``value`` as one word of a unit file: specifiers escaped, quoted if it must be."""
    value = value.replace("%", "%%")
    if re.fullmatch(r"[^\s\"'\\]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def dropin(config: Config, loaded: list[Credential]) -> str:
    """The drop-in's text: the config's folders writable, exactly its key files loaded."""
    lines = [
        f"# Written by `dropscribe service install -c {config.source}`; removed by",
        "# `dropscribe service uninstall`. Run install again after changing the config's",
        "# folders or key files (it rewrites this file).",
        "[Service]",
    ]
    lines += [f"ReadWritePaths={quoted(f'-{folder}')}" for folder in folders(config)]
    lines.append("LoadCredential=")  # the unit's own line is replaced by the config's keys
    lines += [f"LoadCredential={c.name}:{quoted(str(c.path))}" for c in loaded]
    return "\n".join(lines) + "\n"


def service_section(text: str) -> list[tuple[str, str]]:
    """The ``[Service]`` settings of ``systemctl cat`` output (unit and drop-ins), in order."""
    found: list[tuple[str, str]] = []
    section = ""
    pending = ""
    for raw in text.splitlines():
        line = pending + raw.strip()
        pending = ""
        if line.endswith("\\"):
            pending = line[:-1] + " "
            continue
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, value = line.split("=", 1)
            found.append((key.strip(), value.strip()))
    return found


def expand(value: str, unit: str) -> str:
    """The specifiers a system unit's settings use, expanded as systemd would."""
    instance = unit.split("@", 1)[1].rsplit(".", 1)[0] if "@" in unit else ""
    table = {
        "i": instance,
        "I": instance,
        "n": unit,
        "N": unit.rsplit(".", 1)[0],
        "p": unit.split("@", 1)[0].rsplit(".", 1)[0],
        "C": "/var/cache",
        "S": "/var/lib",
        "L": "/var/log",
        "t": "/run",
        "E": "/etc",
        "%": "%",
    }
    return re.sub(r"%(.)", lambda m: table.get(m.group(1), m.group(0)), value)


def sandbox(settings: list[tuple[str, str]], unit: str) -> list[str]:
    """``systemd-run -p`` arguments for the unit's user, groups, folders and sandbox."""
    return [
        f"--property={key}={expand(value, unit)}" for key, value in settings if key not in LIFECYCLE
    ]


def executable(settings: list[tuple[str, str]], unit: str) -> str | None:
    """The dropscribe the unit runs (from its ExecStart=), if it names one."""
    for key, value in settings:
        if key == "ExecStart" and (found := re.search(r"(/\S*/dropscribe)\s", value)):
            return expand(found.group(1), unit)
    return None
