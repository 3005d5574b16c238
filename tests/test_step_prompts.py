"""The steps' pure rules (``steps/prompts.py``): what is asked, how a long transcript and a
long subtitle file are cut, and which translation answers are whole enough to use."""

from __future__ import annotations

from dropscribe.steps import prompts
from dropscribe.steps.prompts import Batch


def test_a_paragraph_longer_than_the_budget_is_cut_at_words_and_parts_fill_up() -> None:
    """Parts hold whole paragraphs up to the budget; one paragraph over it is cut at words;
    every word is kept, in order."""
    long = " ".join(f"word{n}" for n in range(200))
    paragraphs = ["short one", long, "short two"]
    budget = 50
    parts = prompts.parts(paragraphs, budget)
    assert len(parts) > 3
    assert all(prompts.tokens(p) <= budget + 1 for p in parts)
    assert " ".join(" ".join(parts).split()) == " ".join(" ".join(paragraphs).split())


def test_the_summary_asks_in_the_language_set_and_notes_never_do() -> None:
    """A summary's system prompt names the language set; a part's notes do not; a prompt
    of the folder's own replaces the default."""
    (system, user) = prompts.summary_messages("text", None, "de")
    assert system["content"].startswith(prompts.SUMMARY_PROMPT)
    assert system["content"].endswith("code de.")
    assert user == {"role": "user", "content": "text"}
    notes = prompts.summary_messages("text", "Mine.", "de", notes=True)[0]["content"]
    assert notes == prompts.NOTES_PROMPT
    assert prompts.summary_messages("text", "Mine.", None)[0]["content"] == "Mine."


def test_the_md_note_gets_the_sections_without_the_title() -> None:
    """The md note takes a summary's sections; its '# ' title line stays out."""
    answer = "# Site visit\n\n## Summary\nThe bridge is closed.\n"
    assert prompts.sections(answer) == "## Summary\nThe bridge is closed."
    assert prompts.sections("## Summary\nx") == "## Summary\nx"


def test_cues_go_in_numbered_batches_with_context_on_one_line_each() -> None:
    """Cues fill batches up to the budget (one at least); each is numbered from 1 across
    batches, on one line, with the context before it marked not to translate."""
    texts = ["Hello there.", "How are\nyou?", "x" * 300, "Fine."]
    batches = prompts.batches(texts, 20)
    assert [b.first for b in batches] == [0, 2, 3]
    assert [t for b in batches for t in b.texts] == texts
    (_, user) = prompts.translate_messages(batches[0], ["Before  this."], "fr")
    assert user["content"] == (
        "Context:\nBefore this.\n\nTranslate:\n[1] Hello there.\n[2] How are you?"
    )
    assert prompts.halves(Batch(4, ("a", "b", "c"))) == [Batch(4, ("a",)), Batch(5, ("b", "c"))]


def test_an_answer_is_used_only_with_each_number_once_in_order() -> None:
    """Every number once and in order (a wrapped line joins its cue): used; a number
    missing, repeated, out of order, extra or empty: not used."""
    batch = Batch(10, ("one", "two"))
    assert prompts.numbered("[11] eins\n[12] zwei\n  weiter", batch) == ["eins", "zwei weiter"]
    for answer in (
        "[11] eins",
        "[12] zwei\n[11] eins",
        "[11] eins\n[11] eins\n[12] zwei",
        "[11] eins\n[12] zwei\n[13] drei",
        "[11] eins\n[12]",
    ):
        assert prompts.numbered(answer, batch) is None, answer
