"""Signal work only: probing audio, re-encoding and cutting it (transcode, split),
stitching the pieces' transcripts, and reading known voices' clips. What drives the
uploads of a long recording is the job's (``jobs/chunked.py``)."""
