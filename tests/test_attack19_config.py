"""attack19: numbers no setting can be, in hostile configs: YAML 1.1's base 60
(``1:1:1:...``, built in time the square of its length: 55 s of CPU for a 1 MB config)
and hex digits past what any message can print (told as "a bug in dropscribe", with a
traceback). Told at their line and key, never built."""

from __future__ import annotations

import pytest
import yaml

from dropscribe.config import settings
from dropscribe.errors import ConfigError
from test_config import MINIMAL

ENV = {"OPENAI_API_KEY": "sk-test"}


@pytest.mark.parametrize("number", ["1" + ":1" * 50_000, "0x" + "f" * 5000, "0b" + "1" * 101])
def test_a_long_number_is_told_at_its_line_and_never_built(tmp_path, monkeypatch, number):
    """A value written as a number of more than 100 characters: one problem at its
    line and key saying so; YAML's int constructor never runs on it (counted)."""
    built: list[int] = []
    build = yaml.SafeLoader.yaml_constructors["tag:yaml.org,2002:int"]

    def counting(loader: yaml.SafeLoader, node: yaml.ScalarNode) -> object:
        built.append(len(node.value))
        return build(loader, node)

    monkeypatch.setitem(yaml.SafeLoader.yaml_constructors, "tag:yaml.org,2002:int", counting)
    (tmp_path / "inbox").mkdir()
    path = tmp_path / "dropscribe.yaml"
    path.write_text(MINIMAL + f"workers: {number}\n")
    with pytest.raises(ConfigError) as caught:
        settings.load(path, environ=ENV)
    told = [str(p) for p in caught.value.problems]
    assert f"{path}:10: workers: is a number {len(number):,} characters long" in told[0]
    assert not any("a bug in dropscribe" in p for p in told)
    assert max(built, default=0) <= 100
