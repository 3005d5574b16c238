"""review19: a vLLM model without timestamps (Qwen3-ASR, Voxtral served by vLLM) refuses
verbose_json with 400 "Currently do not support verbose_json for MODEL", naming no
parameter. paras19 asks verbose_json for a txt folder: the refusal is learned and the
file sent again as json, as a txt folder's was before, not failed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from conftest import make_wav, named, wait_for
from fakeapi import FakeAPI, Rules

if TYPE_CHECKING:
    from conftest import Setup

QWEN = "Qwen/Qwen3-ASR-1.7B"


def test_vllm_model_without_timestamps_still_writes_txt(
    setup: Setup, events: list[dict[str, Any]]
) -> None:
    """A txt folder on a vLLM model that refuses verbose_json by name gets its txt."""
    with FakeAPI(kind="vllm", models={QWEN: Rules(frozenset({"json", "text"}))}) as api:
        setup.data["endpoints"]["local"].update(kind="vllm", base_url=api.base_url)
        setup.data["defaults"].update(model=QWEN, formats=["txt"])
        setup.api = api
        make_wav(setup.inbox / "a.wav")
        with setup.daemon():
            wait_for(
                lambda: named(events, "file.done") or named(events, "file.failed"),
                what="the file settled",
                timeout=30,
            )
    assert not named(events, "file.failed"), named(events, "file.failed")
    assert [u.fields.get("response_format") for u in api.uploads] == ["verbose_json", "json"]
    assert named(events, "upload.refused")
    assert (setup.inbox / "a.txt").exists()
