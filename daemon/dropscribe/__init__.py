"""dropscribe: watch folders, transcribe new audio, write sidecars."""

__version__ = "0.1.0"
