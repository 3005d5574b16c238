"""attack18: config keys keys18 left out: a key of 100,000 characters (an explicit
``? `` key: YAML's implicit keys stop at 1,024) through check-config and a running
daemon's SIGHUP: told at its line, cut as a person can read it, the running config kept."""

from __future__ import annotations

from test_attacks_hookconf import refused_at_reload

LONG_KEY = "k" * 100_000


def with_long_key(setup) -> str:
    """The config of ``setup`` with an unknown key of 100,000 characters under defaults;
    the line it is on."""
    setup.write()
    lines = setup.config_path.read_text().splitlines()
    at = lines.index("defaults:") + 1
    lines[at:at] = [f"  ? {LONG_KEY}", "  : 1"]
    setup.config_path.write_text("\n".join(lines) + "\n")
    return str(at + 1)


def test_check_config_tells_a_100000_character_key_cut_at_its_line(setup):
    """check-config: exit 2, the key told at its own line by its first 59 characters and
    an ellipsis, in one line of a few hundred characters (it was 100 kB, the key whole)."""
    line = with_long_key(setup)
    done = setup.command("check-config", write=False)
    assert done.returncode == 2, done.stderr[:500]
    (told,) = done.stderr.splitlines()
    assert told.startswith(f"dropscribe: {setup.config_path}:{line}: defaults.{'k' * 59}…: ")
    assert "unknown key" in told
    assert len(told) < 300 + len(str(setup.config_path))


def test_sighup_with_a_100000_character_key_keeps_the_daemon_and_tells_it_cut(setup):
    """A running daemon's SIGHUP with that key: config.reload_failed tells it cut at its
    line, the daemon keeps its config and transcribes a file dropped after."""
    lines: list[str] = []
    (problem,) = refused_at_reload(setup, lambda: lines.append(with_long_key(setup)))
    assert problem.startswith(f"{setup.config_path}:{lines[0]}: defaults.{'k' * 59}…: unknown key")
    assert len(problem) < 300 + len(str(setup.config_path))
