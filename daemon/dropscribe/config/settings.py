"""YAML -> validated, frozen, typed settings.

This is the only module that sees the raw dicts of the config file. Every
problem is collected before anything is reported, each with the file, the line
and the key path it concerns, and the whole list raised as one ConfigError.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import structlog
from pydantic import ValidationError

from dropscribe.config import document, fallbacks, files, glossaryfile, sections, steps
from dropscribe.config.files import unreadable
from dropscribe.config.languagemodel import check as language_model
from dropscribe.config.locate import KeyPath, dotted, from_pydantic, line_of
from dropscribe.config.schema import (
    ConfigModel,
    InboxModel,
    SettingsModel,
    process_count,
)
from dropscribe.errors import ConfigError, Problem
from dropscribe.vocab import fallbacks as several
from dropscribe.vocab import language
from dropscribe.vocab.config import Config, Inbox, Layer
from dropscribe.vocab.endpoints import Endpoint, EndpointModel
from dropscribe.vocab.settings import (
    FolderSettings,
    StrictModel,
)

SETTING_NAMES = tuple(FolderSettings.model_fields)

# What the caller knows of the engines, checked at each level (an inbox with the
# defaults, then each of its rules) whose endpoint and model are set: what that
# endpoint cannot do with those values is told to ``problem``. Config itself knows
# no kind or model (``loading.checked`` does).
Report = Callable[[KeyPath, str], None]
Check = Callable[[Endpoint, dict[str, Any], KeyPath, Report], None]


# ---------------------------------------------------------------- loading


def load(
    path: str | os.PathLike[str],
    environ: dict[str, str] | None = None,
    *,
    keys: bool = True,
    check: Check | None = None,
) -> Config:
    """Read, validate and resolve a config file, or raise ConfigError with every problem
    (and nothing else: a reload keeps the running config on a ConfigError).
    ``keys=False``: API keys are not read (status, explain and retry need none).
    ``check``: what the engines say of each level; None: only what config knows is
    checked. The daemon loads through ``loading.checked.load``, which gives it."""
    source = Path(path)
    env = dict(os.environ) if environ is None else environ
    try:
        text = files.read(source).decode("utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(
            [Problem(str(source), None, "", f"cannot read config: {unreadable(exc)}")]
        ) from None
    try:
        return parse(text, source, env, keys=keys, check=check)
    except ConfigError:
        raise
    except Exception as exc:
        structlog.get_logger("dropscribe").exception("config.load_crashed")
        message = f"cannot load config: {exc.__class__.__name__}: {exc} (a bug in dropscribe)"
        raise ConfigError([Problem(str(source), None, "", message)]) from None


def parse(
    text: str,
    source: Path,
    environ: dict[str, str],
    *,
    keys: bool = True,
    check: Check | None = None,
) -> Config:
    fname = str(source)
    raw, lines, problems = document.parse(text, fname)
    if not isinstance(raw, dict):
        problems.append(Problem(fname, 1, "", "expected a mapping with endpoints: and inboxes:"))
        raise ConfigError(problems)
    try:
        model = ConfigModel.model_validate(raw)
    except ValidationError as exc:
        problems.extend(from_pydantic(exc, lines, fname, ConfigModel))
        # Still check what did validate (keys, inbox folders), so that one run of
        # check-config lists every problem, not just the schema's.
        model = _valid_parts(raw)
    config = _resolve(model, source, environ, lines, problems, raw, keys, check)
    if problems:  # a value no path can hold is said once, not once more by its use;
        # in the file's order, as a person reads it
        raise ConfigError(sorted(dict.fromkeys(problems), key=lambda p: p.line or 0))
    return config


def _valid_parts(raw: dict[str, Any]) -> ConfigModel:
    """The sections of a config that validate on their own, each without the keys found
    wrong (already reported: a typo in defaults: must not also leave every inbox with
    no endpoint); an inbox that still fails becomes None."""

    def valid(model: type[StrictModel], data: Any, *, unknown_only: bool = False) -> Any:
        for _ in range(2):  # as written, then without the keys found wrong
            try:
                return model.model_validate(data)
            except ValidationError as exc:
                wrong = {
                    err["loc"][0]
                    for err in exc.errors()
                    if err["loc"] and (err["type"] == "extra_forbidden" or not unknown_only)
                }
                if not isinstance(data, dict) or not wrong & set(data):
                    return None
                data = {k: v for k, v in data.items() if k not in wrong}
        return None

    endpoints = raw.get("endpoints")
    inboxes = raw.get("inboxes")
    return ConfigModel.model_construct(
        endpoints={
            str(name): ep
            for name, data in (endpoints.items() if isinstance(endpoints, dict) else ())
            # an endpoint without a key found wrong would be "missing" it too
            if (ep := valid(EndpointModel, data, unknown_only=True)) is not None
        },
        defaults=valid(SettingsModel, raw.get("defaults", {})) or SettingsModel(),
        inboxes=tuple(
            valid(InboxModel, data) for data in (inboxes if isinstance(inboxes, list) else ())
        ),
    )


def _resolve(
    model: ConfigModel,
    source: Path,
    environ: dict[str, str],
    lines: dict[KeyPath, int],
    problems: list[Problem],
    raw: dict[str, Any],
    keys: bool,
    check: Check | None,
) -> Config:
    base = source.parent.resolve()
    fname = str(source)

    def problem(path: KeyPath, message: str) -> None:
        problems.append(Problem(fname, line_of(path, lines), dotted(path), message))

    used = (
        {model.defaults.endpoint}
        | {  # the endpoints whose keys must be there
            layer.endpoint
            for inbox in model.inboxes
            if inbox is not None
            for layer in (inbox, *inbox.rules)
        }
        | steps.chat_endpoints(model)
    )
    used |= fallbacks.used(model.defaults, model.inboxes)
    steps.check(model, problem)
    endpoints = {
        name: sections.endpoint(
            name, ep, base, environ, ("endpoints", name), problem, keys and name in used
        )
        for name, ep in model.endpoints.items()
    }
    defaults = _layer(model.defaults, base, ("defaults",), problem)
    inboxes = []
    names: set[str] = set()
    if not model.inboxes and "inboxes" not in {p.key for p in problems}:
        problem(("inboxes",), "list at least one inbox")
    raw_endpoints = raw.get("endpoints")
    known = set(raw_endpoints) if isinstance(raw_endpoints, dict) else set()
    for index, inbox in enumerate(model.inboxes):
        if inbox is None:  # invalid, already reported
            continue
        where: KeyPath = ("inboxes", index)
        try:
            path = files.resolved(inbox.path, base)
        except files.UnusableError as exc:
            problem((*where, "path"), str(exc))
            continue
        if not path.is_dir():
            reason = "is not a folder" if path.exists() else "does not exist"
            problem((*where, "path"), f"inbox {path} {reason}")
        layers = [defaults, _layer(inbox, base, where, problem)]
        for rindex, rule in enumerate(inbox.rules):
            rwhere = (*where, "rules", rindex)
            if rule.match is None and rule.folder is None:
                problem(rwhere, "a rule needs match: (a glob) or folder: (a subfolder)")
            glob, spoken = language.split(rule.match)  # issue 32: match: {language: de}
            layer = _layer(rule, base, rwhere, problem, glob, rule.folder)
            layers.append(dataclasses.replace(layer, language=spoken))
        merged = several.merged(layer.values for layer in layers[:2])
        told = {p.key for p in problems}  # a wrong endpoint: is not also "no endpoint"
        for key in ("endpoint", "model"):
            if key not in merged and not {dotted(("defaults", key)), dotted((*where, key))} & told:
                problem(where, f"no {key}: set it in defaults: or on the inbox")
        for rindex, values in enumerate([merged, *(lay.values for lay in layers[2:])]):
            ep_name = values.get("endpoint")
            if ep_name is not None and ep_name not in known:
                at = (*where, "endpoint") if rindex == 0 else (*where, "rules", rindex - 1)
                problem(at, f"unknown endpoint {ep_name!r}; defined: {', '.join(known)}")
        _check_levels(endpoints, merged, layers[2:], where, problem, check)
        fallbacks.check(endpoints, known, layers, where, problem, check)
        name = _inbox_name(inbox.name, path, names, where, problem)
        inboxes.append(
            Inbox(
                name,
                path,
                inbox.recursive,
                inbox.include,
                inbox.exclude,
                tuple(layers),
                follow_symlinks=inbox.follow_symlinks,
                failed_dir=_own_folder(path, inbox.failed_dir, (*where, "failed_dir"), problem),
                done_dir=_own_folder(path, inbox.done_dir, (*where, "done_dir"), problem),
                watch=inbox.watch,
                poll_seconds=inbox.poll_seconds,
            )
        )
    return Config(
        source=source,
        endpoints=endpoints,
        inboxes=tuple(inboxes),
        workers=model.workers,
        processes=process_count(
            model.processes, (ep.kind for n, ep in endpoints.items() if n in used), os.cpu_count()
        ),
        state_dir=files.chosen_state_dir(base, _state_dir(model.state_dir, base, problem)),
        rescan_seconds=model.rescan_seconds,
        shutdown_grace=model.shutdown_grace,
        log_format=model.log.format,
        log_level=model.log.level,
        metrics=(model.metrics.host, model.metrics.port) if model.metrics else None,
        ledger=sections.shared_ledger(model.ledger, base, environ, problem)
        if model.ledger
        else None,
    )


def _inbox_name(
    given: str | None, path: Path, taken: set[str], where: KeyPath, problem: Any
) -> str:
    """The inbox's ``name:`` (unique, or a problem), else its folder's name made unique;
    added to ``taken``."""
    name = given or path.name or str(path)
    if given is not None and name in taken:
        problem((*where, "name"), f"another inbox is named {name!r} already")
    while name in taken:
        name += "+"
    taken.add(name)
    return name


def _check_levels(
    endpoints: dict[str, Endpoint],
    merged: dict[str, Any],
    rules: list[Layer],
    where: KeyPath,
    problem: Report,
    check: Check | None,
) -> None:
    """``check`` each level whose endpoint and model are set: the inbox (with the
    defaults), then each rule over it."""
    if check is None:
        return
    for index, rule in enumerate([None, *rules]):
        values = several.resolved(several.merged([merged, rule.values if rule else {}]))
        endpoint = endpoints.get(values.get("endpoint", ""))
        at = where if rule is None else (*where, "rules", index - 1)
        if endpoint is not None and values.get("model") is not None:
            check(endpoint, values, at, problem)


def _own_folder(inbox: Path, name: str, where: KeyPath, problem: Any) -> Path:
    """failed_dir, done_dir: the last name not resolved (a link there is refused on use)."""
    try:
        folder = Path(os.path.normpath(files.expanded(name, inbox)))
        return files.resolved(str(folder.parent), inbox) / folder.name
    except files.UnusableError as exc:
        problem(where, str(exc))
        return inbox


def _state_dir(setting: str | None, base: Path, problem: Any) -> str | None:
    """state_dir, resolved (or None, the default, with the problem told)."""
    if not setting:
        return None
    try:
        return str(files.writable_place(files.resolved(setting, base)))
    except files.UnusableError as exc:
        problem(("state_dir",), str(exc))
        return None


def _layer(
    model: SettingsModel,
    base: Path,
    where: KeyPath,
    problem: Any,
    match: str | None = None,
    folder: str | None = None,
) -> Layer:
    values = {
        name: getattr(model, name)
        for name in SETTING_NAMES
        if name in model.model_fields_set and getattr(model, name) is not None
    }
    if model.prompt_file is not None:
        if model.prompt is not None:
            problem(where, "give prompt or prompt_file, not both")
        if read := files.text(model.prompt_file, base, (*where, "prompt_file"), problem):
            values["prompt"] = read[1].strip()
    glossaryfile.read(model, values, base, where, problem)  # glossary_file: into glossary
    language_model(values, base, where, problem)  # lang32b: language_model: checked
    for key in ("output_dir", "voices"):  # folders, relative to the config file
        if key in values:
            try:
                values[key] = files.resolved(str(values[key]), base)
                files.writable_place(values[key])
            except files.UnusableError as exc:
                problem((*where, key), str(exc))
                del values[key]
    if "formats" in values:
        values["formats"] = tuple(dict.fromkeys(values["formats"]))
    steps.resolve(values, base, where, problem)
    return Layer(values, match, folder.strip("/") if folder else None)
