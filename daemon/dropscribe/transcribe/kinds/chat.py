"""kind: chat: an OpenAI-compatible ``/chat/completions`` server for the steps after the
transcript (``steps/``); it transcribes nothing (config/ refuses it as an ``endpoint:``)."""

from dropscribe.transcribe.kinds.base import Kind

KIND = Kind("chat")
