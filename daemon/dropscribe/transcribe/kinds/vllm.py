"""vLLM's OpenAI-compatible server."""

from dropscribe.transcribe.kinds.base import HEADROOM, MIB, Kind

KIND = Kind("vllm", upload_limit=25 * MIB - HEADROOM)  # VLLM_MAX_AUDIO_CLIP_FILESIZE_MB
