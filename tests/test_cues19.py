"""A segment of one word in a script written with spaces (Cyrillic, accented Latin) is
a word after a space, not characters glued to the text before it; one in a script
written without spaces (Chinese, Japanese, Thai) is still its characters, glued."""

from __future__ import annotations

from dropscribe.outputs import cues


def test_one_word_segments_are_glued_only_in_scripts_written_without_spaces() -> None:
    """'Спасибо.' and 'café.wav' stay one word, not glued; '谢谢你' is three glued
    characters, as before."""
    for word in ("Спасибо.", "café.wav", "Straße"):
        (token,) = cues.divided(word, 1.0, 2.0, first=False)
        assert (token.text, token.glued) == (word, False)
    tokens = cues.divided("谢谢你", 1.0, 2.0, first=False)
    assert [t.text for t in tokens] == ["谢", "谢", "你"]
    assert all(t.glued for t in tokens)
    assert cues.divided("สวัสดี", 0.0, 1.0, first=True)[1].glued
