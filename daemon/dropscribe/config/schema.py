"""The config file's schema: pydantic models, every key typed and unknown keys rejected.

Only ``settings.py`` validates against these. Each level (``defaults:``, an inbox, a
rule) is the ground floor's ``FolderSettings`` with what only the file says (a prompt
file, an inbox's folder, a rule's match); ``endpoints:`` are ``EndpointModel``\\s.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, model_validator

from dropscribe.vocab import language  # noqa: TC001 - pydantic reads RuleModel.match
from dropscribe.vocab.endpoints import EndpointModel
from dropscribe.vocab.settings import (
    AUDIO_EXTENSIONS,
    FolderSettings,
    Seconds,
    StrictModel,
    Timeout,
)

if TYPE_CHECKING:
    from collections.abc import Iterable


class SettingsModel(FolderSettings):
    """What one level of the config may say: the folder settings, or a file to read
    the prompt from."""

    prompt_file: str | None = None
    glossary_file: str | None = None  # tracks32: the glossary in a file of its own

    @model_validator(mode="before")
    @classmethod
    def _null_is_unset(cls, data: Any) -> Any:
        """``key: null`` (or a bare ``key:``) means this level does not set the key."""
        if isinstance(data, dict):
            return {key: value for key, value in data.items() if value is not None}
        return data


class RuleModel(SettingsModel):
    match: str | language.Match | None = None  # a glob, or {language: de} (issue 32)
    folder: str | None = None


class InboxModel(SettingsModel):
    path: str
    # how a shared ledger knows the inbox on every host: the same on each (default: the
    # folder's own name)
    name: Annotated[str, Field(min_length=1, pattern=r"^[^/@]+$")] | None = None
    recursive: bool = True
    include: tuple[str, ...] = tuple(f"*.{ext}" for ext in AUDIO_EXTENSIONS)
    exclude: tuple[str, ...] = ()
    follow_symlinks: bool = False
    watch: Literal["auto", "native", "poll"] = "auto"
    poll_seconds: Timeout = 5.0
    failed_dir: str = "failed"
    done_dir: str = "done"
    rules: tuple[RuleModel, ...] = ()


class LogModel(StrictModel):
    format: Literal["auto", "json", "console"] = "auto"
    level: Literal["debug", "info", "warning", "error"] = "info"


class MetricsModel(StrictModel):
    host: str = "127.0.0.1"
    port: Annotated[int, Field(ge=0, le=65535)] = 9464


class LedgerModel(StrictModel):
    """A ledger several hosts share: a PostgreSQL database (the default is SQLite in
    state_dir, this host's alone)."""

    url: str  # postgresql://user@host:port/database, without the password
    password_file: str | None = None  # a bare name is looked for in systemd's credentials
    host: Annotated[str, Field(min_length=1)] | None = None  # default: the hostname
    lease_seconds: Annotated[float, Field(ge=2, le=3600)] = 60.0


class ConfigModel(StrictModel):
    endpoints: dict[str, EndpointModel]
    defaults: SettingsModel = SettingsModel()
    inboxes: tuple[InboxModel, ...]
    # Twice the default max_concurrency: while one job waits on its fsyncs and the
    # ledger's commit, another has the upload slot (1.44x -> 1.64x curl in the bench).
    workers: Annotated[int, Field(ge=1, le=256)] = 8
    processes: Annotated[int, Field(ge=1, le=64)] | Literal["auto"] = "auto"
    state_dir: str | None = None
    rescan_seconds: Timeout = 300.0
    shutdown_grace: Seconds = 30.0
    log: LogModel = LogModel()
    metrics: MetricsModel | None = None
    ledger: LedgerModel | None = None


MOST_PROCESSES = 4  # what processes: auto starts at most


def process_count(setting: int | str, kinds: Iterable[str], cpus: int | None) -> int:
    """``processes:`` as a number. auto: one per CPU core (at most MOST_PROCESSES) for
    HTTP endpoints, since a process runs one thread of Python at a time; 1 wherever
    kind: local is used (each process would load its own model, and the engine already
    uses every core)."""
    if setting != "auto":
        return int(setting)
    if "local" in set(kinds):
        return 1
    return max(1, min(MOST_PROCESSES, cpus or 1))
