"""Several endpoints per folder (issue 34), through the real daemon: a sidecar's
``{model}`` is the model of the endpoint that transcribed the file, and ``route:
cheapest`` with a deadline the cheap endpoint alone cannot meet sends part of the
backlog to a dearer one (the figures: bench/routing.py)."""

from __future__ import annotations

from conftest import API_KEY, DaemonProcess, make_wav
from fakeapi import FakeAPI
from test_fallback34 import MODELS, free_port, three

COMMON = {"api_key_env": "DROPSCRIBE_TEST_KEY", "timeout": 30, "backoff_max": 0.2}


def test_the_model_in_a_sidecar_name_is_the_one_that_transcribed_it(setup):
    """name_template {stem}.{model}.{ext}: the first endpoint down, the second takes
    the file, and its sidecar is named with the second endpoint's model."""
    with FakeAPI(api_key=API_KEY) as second, FakeAPI(api_key=API_KEY, kind="speaches") as third:
        three(setup, f"http://127.0.0.1:{free_port()}/v1", second, third)
        setup.data["defaults"]["name_template"] = "{stem}.{model}.{ext}"
        make_wav(setup.inbox / "a.wav", seconds=1.0)
        proc = DaemonProcess(setup, command="once")
        assert proc.wait(120) == 0
    assert len(second.uploads) == 1
    [fallback] = proc.named("file.fallback")
    assert (fallback["endpoint"], fallback["to"]) == ("first", "second")
    assert sorted(p.name for p in setup.inbox.glob("a.*.txt")) == [f"a.{MODELS['second']}.txt"]


def test_a_deadline_the_cheap_endpoint_alone_cannot_meet_shares_the_backlog(setup):
    """route: cheapest, deadline: 8s; five files at 3 s each on the cheap endpoint, one
    at a time, would take 15 s: the cheap endpoint takes at most what it can finish and
    the dearer, faster one the rest (before: every file went to the cheap one)."""
    with FakeAPI() as dear, FakeAPI(delay=3.0) as cheap:
        setup.data["endpoints"] = {
            "dear": {"base_url": dear.base_url, "price_per_hour": 0.36, **COMMON},
            "cheap": {
                "base_url": cheap.base_url,
                "price_per_hour": 0.04,
                "max_concurrency": 1,
                **COMMON,
            },
        }
        setup.data["defaults"].update(
            endpoint=["dear", "cheap"], model="whisper-1", route="cheapest", deadline="8s"
        )
        setup.data["workers"] = 1
        for n in range(5):
            make_wav(setup.inbox / f"f{n}.wav", seconds=1.0, freq=300.0 + 70 * n)
        proc = DaemonProcess(setup, command="once")
        assert proc.wait(120) == 0
    assert len(list(setup.inbox.glob("*.txt"))) == 5
    assert len(cheap.uploads) < 5
    assert len(dear.uploads) >= 1
    assert len(cheap.uploads) + len(dear.uploads) == 5


def test_explain_says_the_timing_of_each_endpoint_in_the_list(setup):
    """explain gives each endpoint of the list its own timing line, with its own model:
    a file may be transcribed by any of them (it said the first one's only)."""
    with FakeAPI(api_key=API_KEY) as second, FakeAPI(api_key=API_KEY, kind="speaches") as third:
        three(setup, f"http://127.0.0.1:{free_port()}/v1", second, third)
        setup.data["defaults"]["formats"] = ["txt", "srt"]
        said = setup.command("explain", str(setup.inbox / "a.wav")).stdout
    timings = [line.split(":")[0].strip() for line in said.splitlines() if "  timing" in line]
    assert timings == [f"timing on {name} ({model})" for name, model in MODELS.items()]
