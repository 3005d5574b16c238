"""SIGHUP: the config file read again, with what only a restart can change kept."""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

import structlog

from dropscribe.errors import ConfigError
from dropscribe.loading import checked

if TYPE_CHECKING:
    from dropscribe.vocab.config import Config

log = structlog.get_logger("dropscribe")

# Config attributes a reload cannot change (the YAML keys, for the warning that says so)
RESTART_ONLY = {
    "workers": "workers",
    "processes": "processes",
    "state_dir": "state_dir",
    "ledger": "ledger",
    "metrics": "metrics",  # its server is started once, in run(): a reload never moved it
    "log_format": "log.format",
    "log_level": "log.level",
}


def reread(old: Config) -> Config | None:
    """The config file as it is now, with ``old``'s restart-only values; None (and a
    ``config.reload_failed`` event) when it is broken."""
    try:
        new = checked.load(old.source)
    except ConfigError as exc:
        log.error(
            "config.reload_failed",
            problems=[str(p) for p in exc.problems],
            action="kept the running config",
        )
        return None
    fixed = [key for attr, key in RESTART_ONLY.items() if getattr(new, attr) != getattr(old, attr)]
    if fixed:
        log.warning("config.needs_restart", keys=fixed, action="kept the running values")
        new = replace(new, **{attr: getattr(old, attr) for attr in RESTART_ONLY})
    return new
