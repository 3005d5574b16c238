"""attack21: ``rehearse --apply`` wrote ``--model`` into the config as it was given: a
`` #`` in it cut the name short (the config then named another model than the one
rehearsed and said to be set), and a newline added keys of its own to the inbox (a
``hook:`` command). It is written as YAML that reads back as the very name."""

from __future__ import annotations

import pytest
import yaml

from conftest import API_KEY
from fakeapi import OPENAI_MODELS, FakeAPI
from test_rehearse import finished, rehearse

pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "model", ["gpt-transcribe #large", "gpt-transcribe\n    hook: {command: [touch, /tmp/x]}"]
)
def test_apply_sets_the_very_model_named_and_nothing_else(setup, model: str) -> None:
    """--apply with a model named with `` #``, or with a newline and a hook after it (an
    endpoint that serves it): the inbox's model: reads back as the whole name, and the
    inbox has no other new key."""
    served = {**OPENAI_MODELS, model: OPENAI_MODELS["gpt-transcribe"]}
    with FakeAPI(api_key=API_KEY, models=served) as api:
        finished(setup, api, 1)
        before = yaml.safe_load(setup.config_path.read_text())["inboxes"][0]
        shown = rehearse(setup, "--inbox", str(setup.inbox), "--model", model, "--apply")
    assert shown.returncode == 0, shown.stdout + shown.stderr
    after = yaml.safe_load(setup.config_path.read_text())["inboxes"][0]
    assert after == {**before, "model": model}
