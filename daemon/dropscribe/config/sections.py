"""The two sections of the config that are more than settings: ``endpoints:`` (each
with its API key read, from a variable, a file or systemd's credentials) and
``ledger:`` (the shared PostgreSQL ledger: its URL checked, its password read)."""

from __future__ import annotations

import importlib.util
import urllib.parse
from typing import TYPE_CHECKING, Any

from dropscribe.config import keyfile
from dropscribe.vocab.config import SharedLedger
from dropscribe.vocab.endpoints import Endpoint

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.config.locate import KeyPath
    from dropscribe.config.schema import LedgerModel
    from dropscribe.vocab.endpoints import EndpointModel


def shared_ledger(
    model: LedgerModel, base: Path, environ: dict[str, str], problem: Any
) -> SharedLedger | None:
    """``ledger:`` checked: a postgresql:// URL without a password, the password read
    from its file (or systemd credential), and psycopg installed."""
    if why := _url_problem(model.url):
        problem(("ledger", "url"), f"ledger URL {why}")
    if importlib.util.find_spec("psycopg") is None:
        problem(
            ("ledger",),
            "a PostgreSQL ledger needs psycopg: install dropscribe[postgresql]"
            " (pip install -e '.[postgresql]' in the checkout)",
        )
    password = None
    if model.password_file is not None:
        password = keyfile.read(
            model.password_file, base, environ, ("ledger", "password_file"), problem
        )
    return SharedLedger(model.url, password, model.host or "", model.lease_seconds)


def _url_problem(url: str) -> str | None:
    """Why ``url`` cannot name the shared ledger, if it cannot (never quoting it: it
    might hold a password)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # an unclosed [ of an IPv6 address
        return f"is not a URL ({exc})"
    if parts.scheme not in {"postgresql", "postgres"}:
        return "must start with postgresql://"
    query = urllib.parse.parse_qs(parts.query)
    if parts.password is not None or "password" in query:
        return "holds a password: put it in password_file (or a systemd credential)"
    return None


def endpoint(
    name: str,
    ep: EndpointModel,
    base: Path,
    environ: dict[str, str],
    where: KeyPath,
    problem: Any,
    used: bool,
) -> Endpoint:
    """Resolve one endpoint; its key must be at hand only if some inbox uses it."""
    key: str | None = None
    if ep.kind != "local" and ep.base_url is None:
        problem(where, f"base_url is required (kind: {ep.kind})")
    if ep.api_key_env and ep.api_key_file:
        problem(where, "give api_key_env or api_key_file, not both")
    elif ep.api_key_env:
        key = environ.get(ep.api_key_env)
        if not key and used:
            problem((*where, "api_key_env"), f"environment variable {ep.api_key_env} is not set")
    elif ep.api_key_file and used:
        key = keyfile.read(ep.api_key_file, base, environ, (*where, "api_key_file"), problem)
    keyfile.check(key, ep.api_key_env, ep.api_key_file, where, problem)
    # Validated already: only the resolved values are new.
    return Endpoint.model_construct(
        ep.model_fields_set | {"name", "base_url", "api_key", "max_concurrency"},
        **{
            **dict(ep),
            "name": name,
            "base_url": (ep.base_url or "").rstrip("/"),
            "api_key": key,
            "max_concurrency": ep.max_concurrency or (1 if ep.kind == "local" else 4),
            "request_path": ep.request_path.strip("/") if ep.request_path else None,
        },
    )
