"""Audio itself: probing it, re-encoding and cutting recordings an endpoint cannot take
as they are (chunked), and stitching the pieces' transcripts."""
