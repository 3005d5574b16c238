"""The decision table of ``jobs/decide.py``: how a file is sent, from facts alone."""

from __future__ import annotations

import ast
import dataclasses
import itertools
from pathlib import Path

import pytest

from dropscribe.jobs import decide
from dropscribe.jobs.decide import Facts, Finish, How, Plan, Then

MIB = 2**20
NO_TIMING = "align: false"
SPANS_NO_TIMING = (
    "model m gives no timestamps and its words cannot be timed on this machine"
    " (align: false); short spans place the text in time"
)
TOO_LARGE = (
    "the endpoint refused the whole file as too large (HTTP 413); set max_upload_bytes to its limit"
)


def facts(**changes: object) -> Facts:
    """A small wav within every limit, to whisper-1 on OpenAI, for a text sidecar."""
    base = Facts(
        kind="openai",
        model="m",
        size=1000,
        extension="wav",
        accepted=True,
        upload_limit=25 * MIB,
        duration=60.0,
        video=False,
        request_seconds=None,
        gives_times="verbose_json",
        granularities=True,
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_a_file_within_every_limit_goes_whole():
    """A file the endpoint takes as it is is one upload, with no reason."""
    assert decide.decide(facts()) == Plan(How.WHOLE)


@pytest.mark.parametrize(
    ("changes", "why"),
    [
        ({"video": True}, "it has a picture track; only the audio is sent"),
        (
            {"accepted": False, "extension": "opus"},
            "endpoint kind openai does not take .opus files",
        ),
        ({"size": 30 * MIB}, "30.0 MiB is over the 25.0 MiB upload limit"),
        (
            {"request_seconds": 1500.0, "duration": 2000.0},
            "2000 s is over the 1500 s one request to m may carry",
        ),
        ({"whole_refused": True}, TOO_LARGE),
    ],
)
def test_each_reason_to_reencode_makes_chunks_saying_it(changes, why):
    """A picture, a type, bytes, duration or a 413 each make chunks, the reason naming it."""
    assert decide.decide(facts(**changes)) == Plan(How.CHUNKS, why)


def test_the_first_reason_in_order_is_the_one_given():
    """Picture before type before bytes before duration before a 413."""
    every = facts(
        video=True,
        accepted=False,
        size=30 * MIB,
        request_seconds=10.0,
        whole_refused=True,
    )
    assert decide.decide(every).reason == "it has a picture track; only the audio is sent"
    no_picture = dataclasses.replace(every, video=False)
    assert "does not take" in (decide.decide(no_picture).reason or "")
    taken = dataclasses.replace(no_picture, accepted=True)
    assert "upload limit" in (decide.decide(taken).reason or "")
    small = dataclasses.replace(taken, size=1)
    assert "one request" in (decide.decide(small).reason or "")
    short = dataclasses.replace(small, request_seconds=None)
    assert decide.decide(short).reason == TOO_LARGE


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"upload_limit": None, "size": 10**12},
        {"request_seconds": 60.0},  # exactly at the limit
        {"size": 25 * MIB},  # exactly at the limit
        {"duration": None, "request_seconds": 10.0},  # an unknown length is not over
    ],
)
def test_no_limit_or_at_the_limit_goes_whole(changes):
    """No limit, an unknown length, or exactly at a limit is not over it."""
    assert decide.decide(facts(**changes)).how is How.WHOLE


def test_local_goes_whole_whatever_the_file():
    """The local engine decodes any container and any length: always whole, never spans."""
    for video, accepted, size, refused, gives, timing in itertools.product(
        (False, True), (False, True), (1, 10**12), (False, True), (None, "json"), (None, "x")
    ):
        plan = decide.decide(
            facts(
                kind="local",
                video=video,
                accepted=accepted,
                size=size,
                request_seconds=1.0,
                whole_refused=refused,
                timed=True,
                gives_times=gives,
                timing_unusable=timing,
            )
        )
        assert plan == Plan(How.WHOLE) or plan == Plan(How.CHUNKS, TOO_LARGE)
        assert plan.how is not How.SPANS
        assert (plan.how is How.CHUNKS) == refused


def test_no_times_from_the_model_and_none_here_makes_spans():
    """Times wanted, a model without them, local timing unusable: short spans, saying why."""
    plan = decide.decide(facts(timed=True, gives_times=None, timing_unusable=NO_TIMING))
    assert plan == Plan(How.SPANS, SPANS_NO_TIMING, untimed=True)


def test_spans_win_over_every_reason_to_reencode():
    """Spans are chunks already: a picture or a size does not make plain chunks instead."""
    plan = decide.decide(
        facts(
            timed=True,
            gives_times=None,
            timing_unusable=NO_TIMING,
            video=True,
            size=30 * MIB,
            whole_refused=True,
        )
    )
    assert plan.how is How.SPANS


@pytest.mark.parametrize("how", ["whole", "chunks"])
def test_no_times_from_the_model_but_timing_here_asks_untimed(how):
    """A model without times, words timed here: the file goes as it can, asked untimed."""
    plan = decide.decide(facts(timed=True, gives_times=None, video=how == "chunks"))
    assert plan.how is How(how)
    assert plan.untimed


@pytest.mark.parametrize(
    ("timed", "gives_times", "expected"),
    [(False, None, False), (True, "verbose_json", False), (False, "json", False)],
)
def test_times_asked_of_the_server_where_it_gives_them_or_none_are_needed(
    timed, gives_times, expected
):
    """No times needed, or a model that gives them: no spans, the request as it is."""
    plan = decide.decide(facts(timed=timed, gives_times=gives_times, timing_unusable=NO_TIMING))
    assert plan == Plan(How.WHOLE, untimed=expected)


@pytest.mark.parametrize(
    ("language", "with_times", "speakers", "timing", "untimed"),
    [
        (True, False, False, None, True),  # Voxtral 3: the language, without times
        (True, False, False, NO_TIMING, False),  # no timing here: ask for times
        (True, False, True, None, False),  # speakers need the server's segments
        (True, True, False, None, False),  # the pair is taken
        (False, False, False, None, False),  # no language to send
    ],
)
def test_a_model_refusing_language_with_times_is_asked_untimed_where_timing_is_here(
    language, with_times, speakers, timing, untimed
):
    """The language goes without times only where the words can be timed here instead."""
    plan = decide.decide(
        facts(
            timed=True,
            language=language,
            language_with_times=with_times,
            speakers=speakers,
            timing_unusable=timing,
        )
    )
    assert plan == Plan(How.WHOLE, untimed=untimed)


def test_decide_needs_local_timing_only_where_it_changes_the_plan():
    """asks_timing says when timing_unusable matters, so it is looked up only then."""
    for timed, local, gives, language, with_times, speakers in itertools.product(
        (False, True), (False, True), (None, "json"), (False, True), (False, True), (False, True)
    ):
        base = facts(
            timed=timed,
            kind="local" if local else "openai",
            gives_times=gives,
            language=language,
            language_with_times=with_times,
            speakers=speakers,
        )
        unusable = dataclasses.replace(base, timing_unusable=NO_TIMING)
        if not decide.asks_timing(base):
            assert decide.decide(base) == decide.decide(unusable)
        else:
            assert decide.decide(base) != decide.decide(unusable)


def test_facts_say_which_models_answer_with_word_times():
    """Word times: verbose_json with granularities, and not Mistral (segments only)."""
    assert facts().worded
    assert not facts(kind="mistral").worded
    assert not facts(granularities=False).worded
    assert not facts(gives_times="json").worded
    assert not facts(kind="local").remote


WHOLE, UNTIMED = Plan(How.WHOLE), Plan(How.WHOLE, untimed=True)


@pytest.mark.parametrize(
    ("changes", "plan", "text", "words", "unusable", "expected"),
    [
        ({}, WHOLE, True, False, None, Finish(Then.KEEP)),  # no times needed
        ({"timed": True}, WHOLE, False, False, None, Finish(Then.KEEP)),  # nothing said
        ({"timed": True}, WHOLE, True, True, None, Finish(Then.SNAP)),
        ({"timed": True, "kind": "local"}, WHOLE, True, True, None, Finish(Then.SNAP)),
        ({"timed": True, "kind": "local"}, WHOLE, True, False, None, Finish(Then.KEEP)),
        ({"timed": True}, WHOLE, True, False, None, Finish(Then.KEEP)),  # worded model
        ({"timed": True, "kind": "mistral"}, WHOLE, True, False, None, Finish(Then.ALIGN)),
        ({"timed": True, "gives_times": None}, UNTIMED, True, False, None, Finish(Then.ALIGN)),
        (
            {"timed": True, "gives_times": None},
            UNTIMED,
            True,
            False,
            NO_TIMING,
            Finish(Then.SPANS, SPANS_NO_TIMING),
        ),
        ({"timed": True, "kind": "mistral"}, WHOLE, True, False, NO_TIMING, Finish(Then.KEEP)),
    ],
)
def test_what_becomes_of_an_answer(changes, plan, text, words, unusable, expected):
    """Snapped, kept, timed here, or (untimed and no timing for its language) spans."""
    known = facts(**changes)
    assert decide.after(known, plan, text=text, words=words, unusable=unusable) == expected


def test_after_needs_local_timing_only_where_it_changes_the_finish():
    """asks_timing_after says when the answer's language must be checked for timing."""
    for timed, kind, gives, text, words, untimed in itertools.product(
        (False, True),
        ("openai", "mistral", "local"),
        (None, "verbose_json"),
        (False, True),
        (False, True),
        (False, True),
    ):
        known = facts(timed=timed, kind=kind, gives_times=gives)
        plan = Plan(How.WHOLE, untimed=untimed)
        asks = decide.asks_timing_after(known, text=text, words=words)
        said = decide.after(known, plan, text=text, words=words, unusable=NO_TIMING)
        usable = decide.after(known, plan, text=text, words=words, unusable=None)
        assert asks == (usable.then is Then.ALIGN)
        if not asks:
            assert said == usable


def test_facts_and_plans_are_frozen_values():
    """A plan cannot be changed after it is made."""
    with pytest.raises(dataclasses.FrozenInstanceError):
        decide.decide(facts()).how = How.SPANS  # type: ignore[misc]
    assert hash(facts()) == hash(facts())


def test_the_planning_module_imports_nothing_of_the_package():
    """decide.py is pure: it imports only the standard library's values, never I/O."""
    tree = ast.parse(Path(decide.__file__).read_text())
    imported = {
        alias.name.split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.Import)
        for alias in node.names
    } | {
        (node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
    }
    assert imported <= {"__future__", "dataclasses", "enum"}
