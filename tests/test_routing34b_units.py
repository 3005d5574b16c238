"""Several endpoints per folder (issue 34), the places that read a folder's endpoints:
check-config's probes, the service's key files and the deprecation radar each take every
endpoint of a list and every model of its map, not only the first; and routing's pure
piece, the deadline shared across endpoints (vocab/route.py)."""

from __future__ import annotations

import importlib.util
from typing import TYPE_CHECKING

import pytest

from dropscribe.commands import service, unitfile
from dropscribe.config import preflight
from dropscribe.loading import checked
from dropscribe.transcribe import lookout
from dropscribe.vocab.route import Backlog, Option, fits, ordered, under_way

if TYPE_CHECKING:
    from pathlib import Path

    from dropscribe.vocab.config import Config

LISTED = """\
endpoints:
  first:
    base_url: https://api.openai.com/v1
    api_key_env: OPENAI_API_KEY
  second:
    kind: openai
    base_url: https://api.example.com/v1
    api_key_file: second-key
  here:
    kind: local
defaults:
  endpoint: [first, second, here]
  model: {first: whisper-1, second: gpt-4o-mini-transcribe, here: tiny.en}
inboxes:
  - path: inbox
"""


def loaded(tmp_path: Path) -> Config:
    (tmp_path / "inbox").mkdir()
    (tmp_path / "second-key").write_text("sk-second\n")
    (tmp_path / "c.yaml").write_text(LISTED)
    return checked.load(tmp_path / "c.yaml", environ={"OPENAI_API_KEY": "sk-example"})


def test_check_config_probes_a_local_endpoint_later_in_the_list(tmp_path, monkeypatch):
    """kind: local third in a folder's list, where faster-whisper is not installed, is a
    problem check-config names (it was looked for as the first endpoint only)."""
    cfg = loaded(tmp_path)
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name: None if name == "faster_whisper" else real(name)
    )
    assert [p.split(":")[0] for p in preflight.problems(cfg)] == ["endpoints.here"]


def test_the_service_needs_the_key_file_of_every_endpoint_in_the_list(tmp_path):
    """The second endpoint's api_key_file is loaded with LoadCredential= and, missing,
    stops `service install` (an endpoint later in the list is used too)."""
    cfg = loaded(tmp_path)
    (cred,) = unitfile.credentials(cfg, {})
    assert (cred.endpoint, cred.used) == ("second", True)
    (tmp_path / "second-key").unlink()
    loaded_keys, problems = service._keys(cfg, {})
    assert loaded_keys == []
    assert problems[0].startswith("endpoints.second.api_key_file: key file")


def test_the_radar_watches_the_models_of_every_endpoint_in_the_list(tmp_path):
    """The deprecation radar asks each endpoint of the list about its own model."""
    cfg = loaded(tmp_path)
    assert lookout.in_use(cfg) == {
        "first": {"whisper-1"},
        "second": {"gpt-4o-mini-transcribe"},
        "here": {"tiny.en"},
    }


def test_requests_under_way_are_served_in_turn():
    """Three requests of 10 s of audio at factor 1 on one slot, sent 4 s ago: 26 s of
    work left and room in 26 s; with three slots, 6 s each and room in 6 s."""
    sent = [(96.0, 10.0)] * 3
    assert under_way(sent, 1.0, 1, now=100.0) == pytest.approx((26.0, 26.0))
    assert under_way(sent, 1.0, 3, now=100.0) == pytest.approx((18.0, 6.0))
    assert under_way([], 1.0, 2, now=100.0) == (0.0, 0.0)


CHEAP = Option("cheap", "m", 0.04, 1.5, concurrency=2)
MID = Option("mid", "m", 0.18, 0.4, concurrency=2)
FAST = Option("fast", "m", 0.36, 0.1, concurrency=2)


def test_cheapest_takes_what_it_can_finish_by_the_deadline_and_no_more():
    """A backlog of 24 files of 2 s the cheap endpoint alone would finish in 36 s: with
    20 s left it takes the file; once its slots hold all it can finish, the file goes to
    the next cheapest."""
    options = [CHEAP, MID, FAST]
    backlog = Backlog(files=24, left=20.0, workers=4)
    assert ordered(options, "cheapest", 2.0, backlog)[0][0] == "cheap"
    due, free = under_way([(0.0, 2.0)] * 12, 1.5, 2, now=0.0)  # 12 files: 18 s on each slot
    full = Option("cheap", "m", 0.04, 1.5, 2, due, free)
    assert not fits([full, MID, FAST], full, 2.0, Backlog(12, 20.0, 4, due))
    assert ordered([full, MID, FAST], "cheapest", 2.0, Backlog(12, 20.0, 4, due))[0][0] == "mid"


def test_cheapest_without_a_deadline_it_can_meet_finishes_soonest():
    """When no endpoint can finish the file in the time left, the soonest first."""
    order = ordered([CHEAP, MID, FAST], "cheapest", 2.0, Backlog(24, 0.1, 4))
    assert [name for name, _ in order] == ["fast", "mid", "cheap"]


def test_workers_bound_the_backlog():
    """With one worker, sending a file to the slow cheap endpoint leaves too little of
    the worker's time for the rest; with many workers it does not."""
    assert not fits([CHEAP, FAST], CHEAP, 2.0, Backlog(files=60, left=10.0, workers=1))
    assert fits([CHEAP, FAST], CHEAP, 2.0, Backlog(files=60, left=10.0, workers=8))
