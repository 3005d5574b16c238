"""The house's own unit checks: names that say one thing, drawn where they are defined."""

from __future__ import annotations

import inspect
import re

from dropscribe import errors

BRANCH = re.compile(r"^(?P<indent>[ │├└─]*)(?P<name>[A-Za-z]+)(?: \((?P<also>[A-Za-z]+)\))?")


def _drawn() -> dict[str, tuple[str | None, str | None]]:
    """Each class in errors.py's docstring tree: (its drawn parent, its other base)."""
    doc = errors.__doc__ or ""
    tree = [line[4:] for line in doc.splitlines() if line.startswith("    ") and line.strip()]
    drawn: dict[str, tuple[str | None, str | None]] = {}
    parents: list[str] = []
    for line in tree:
        found = BRANCH.match(line)
        assert found, line
        depth = len(found["indent"]) // 4
        parents[depth:] = [found["name"]]
        drawn[found["name"]] = (parents[depth - 1] if depth else None, found["also"])
    return drawn


def test_errors_docstring_draws_every_exception_with_its_bases():
    """Every exception class errors.py defines is in its docstring's tree, under its parent."""
    defined = {
        name: cls
        for name, cls in vars(errors).items()
        if inspect.isclass(cls)
        and issubclass(cls, BaseException)
        and cls.__module__ == errors.__name__
    }
    drawn = _drawn()
    assert set(defined) <= set(drawn), set(defined) - set(drawn)
    for name, cls in defined.items():
        parent, also = drawn[name]
        assert {base.__name__ for base in cls.__bases__} == {parent, also} - {None}, name


def test_no_two_classes_of_the_package_share_a_name_where_it_was_said_twice():
    """Item and Unusable each name one class: the settled file and the endpoint are named apart."""
    from dropscribe.jobs import job
    from dropscribe.transcribe import models

    assert not hasattr(job, "Item")
    assert hasattr(models, "Item")
    assert not hasattr(errors, "Unusable")
