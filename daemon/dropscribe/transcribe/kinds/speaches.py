"""speaches (faster-whisper-server): the OpenAI form, no upload limit of its own."""

from dropscribe.transcribe.kinds.base import Kind

KIND = Kind("speaches")
