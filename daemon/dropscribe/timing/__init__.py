"""Word times for any transcript: the answer's own words timed against the audio on this
machine, and every engine's word times snapped to where speech starts and stops.

``snap`` and ``windows`` are pure (words and loudness in, times out); ``whisper`` runs the
local model's alignment heads over one window; ``timed`` puts them together for a job:
decode the audio once, align or snap, and give the transcript back with the answer's
words, each once and in order.
"""
