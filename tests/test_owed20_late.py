"""owed20: a hook owed and run late is the one the on-time run had: a hook that only a
rule by language sets (``match: {language: de}``) runs late once, not ``hook.dropped``."""

from __future__ import annotations

from typing import Any

import pytest

from test_hooks20_owed import blocking_hook, calls, killed_in_hook, ran_late

pytestmark = pytest.mark.slow


def test_a_hook_set_by_a_language_rule_runs_late_once(setup: Any) -> None:
    """kill -9 while a's hook (set by a rule for language de only) runs: the next start
    runs it once more, late, with the same JSON; nothing is dropped."""
    with blocking_hook(setup.root) as (command, log):
        setup.data["rescan_seconds"] = 1
        setup.data["inboxes"][0] |= {
            "language": "de",
            "rules": [{"match": {"language": "de"}, "hook": {"command": command}}],
        }
        killed_in_hook(setup, log)
        second = ran_late(setup)
    before, late = calls(log)
    assert late["stdin"] == {**before["stdin"], "late": True}
    assert (before["env_late"], late["env_late"]) == (None, "1")
    assert not second.named("hook.dropped")
    assert len(second.named("hook.late")) == 1
