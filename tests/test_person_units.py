"""Pure pieces behind the person-facing messages."""

from __future__ import annotations

from dropscribe.config.locate import known_keys
from dropscribe.config.schema import ConfigModel


def test_known_keys_follows_lists_dicts_and_unions():
    """The keys a mapping may hold are found through dicts, lists and optional sections."""
    assert "max_attempts" in known_keys(ConfigModel, ("endpoints", "x"))
    assert "recursive" in known_keys(ConfigModel, ("inboxes", 0))
    assert "match" in known_keys(ConfigModel, ("inboxes", 0, "rules", 2))
    assert "format" in known_keys(ConfigModel, ("log",))
    assert known_keys(ConfigModel, ("nowhere",)) == []
