"""Audio to text: the HTTP endpoints (http, shaped per kind and model, uploaded with
retries, concurrency and a breaker by uploader) and the local engine."""
