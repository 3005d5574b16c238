"""Endpoint kinds apart from the transport: one module per kind, named in the schema,
and only http.py touching httpx."""

from __future__ import annotations

import ast
import typing
from pathlib import Path

import pytest

from dropscribe.errors import EndpointError, ModelGone, OutageError, PermanentError
from dropscribe.transcribe import answers, kinds
from dropscribe.vocab.endpoints import EndpointModel

if typing.TYPE_CHECKING:
    from dropscribe.transcript import Transcript

TRANSCRIBE = Path(kinds.__file__).parent.parent


def test_every_kind_in_the_schema_has_its_module_and_no_module_is_unnamed():
    """The config's kinds (but local, the in-process engine) are exactly the modules in
    transcribe/kinds/: a new kind is one file there plus its name in the schema."""
    named = set(typing.get_args(EndpointModel.model_fields["kind"].annotation)) - {"local"}
    assert set(kinds.KINDS) == named
    modules = {p.stem for p in (TRANSCRIBE / "kinds").glob("*.py")} - {"__init__", "base", "form"}
    assert modules == named
    assert all(kinds.KINDS[name].name == name for name in named)


def test_only_the_transport_imports_httpx_in_the_policy_modules():
    """The kinds and the reading of answers are pure: none imports httpx."""
    pure = [
        TRANSCRIBE / "answers.py",
        TRANSCRIBE / "bodies.py",
        *(TRANSCRIBE / "kinds").glob("*.py"),
    ]
    for path in pure:
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.split(".")[0] == "httpx"], path


def test_an_answer_is_read_without_a_connection():
    """answers.py turns a status, headers and body into a transcript or one of our
    errors, with no HTTP client in sight."""

    def read(status: int, body: bytes) -> Transcript:
        return answers.transcript(
            status,
            {"x-request-id": "req_1"},
            body,
            charset=None,
            response_format="json",
            model="whisper-1",
            where="http://x",
            scrub=str,
            now=0.0,
        )

    said = read(200, b'{"text": "hello"}')
    assert (said.text, said.request_id) == ("hello", "req_1")
    failures = {
        401: (b'{"error": {"message": "bad key"}}', EndpointError),
        503: (b'{"error": {"message": "busy"}}', OutageError),
        400: (b'{"error": {"message": "bad", "param": "prompt"}}', PermanentError),
        404: (b'{"error": {"message": "no", "code": "model_not_found"}}', ModelGone),
    }
    for status, (body, cls) in failures.items():
        with pytest.raises(cls) as raised:
            read(status, body)
        assert raised.value.status == status
