"""Prometheus metrics and a health check, served on 127.0.0.1 unless configured otherwise.

GET /metrics   files by state, the backlog, uploads by status, bytes, latency, queue,
               retries, pauses, the steps' tokens and failures per chat endpoint and step
GET /healthz   200 while the main loop turns, 503 once it has been stuck for a minute
"""

from __future__ import annotations

import datetime as dt
import gzip
import time
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4, choose_encoder, generate_latest

from dropscribe.errors import DropscribeError, SetupError
from dropscribe.ops.serving import Answer, BoundedServer, Request, plain
from dropscribe.ops.spending import SpendCollector
from dropscribe.vocab.states import FileState

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

    from dropscribe.ledger.spend import Total
    from dropscribe.transcribe.radar import Retiring
    from dropscribe.vocab.budget import Periods

STUCK_SECONDS = 60.0
# Files the ledger holds and has not finished: a job under way (on any host sharing the
# ledger) or due another try. Failed files wait for a person (dropscribe retry), not a host.
UNFINISHED = frozenset({FileState.UPLOADING, FileState.ERROR})
# What the uploading code counts (in worker processes, when there are some).
UPLOAD_FAMILIES = frozenset(
    {
        "dropscribe_uploads",
        "dropscribe_claims",
        "dropscribe_upload_bytes",
        "dropscribe_upload_seconds",
        "dropscribe_retries",
        "dropscribe_endpoint_pauses",
        "dropscribe_endpoint_paused",
    }
)


class _LedgerCollector:
    """Files by state and the backlog, read from the ledger at scrape time."""

    def __init__(self, counts: Callable[[], dict[str, int]], waiting: Callable[[], float]) -> None:
        self._counts = counts
        self._waiting = waiting

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "dropscribe_files", "Files in the ledger by state", labels=["state"]
        )
        try:
            counts = self._counts()
        except DropscribeError:  # a shared ledger out of reach: no figures this scrape
            return
        for state, count in sorted(counts.items()):
            family.add_metric([state], count)
        yield family
        unfinished = sum(counts.get(state, 0) for state in UNFINISHED)
        yield GaugeMetricFamily(
            "dropscribe_backlog_files",
            "Work waiting: files the ledger (shared: every host's) holds unfinished, under way"
            " or due another try, plus this host's settled files not yet begun",
            value=unfinished + self._waiting(),
        )


class Metrics:
    """Every instrument the daemon updates; cheap when nobody scrapes."""

    def __init__(self, *, uploads: bool = True) -> None:
        """``uploads=False``: worker processes upload, and their figures are served instead."""
        self.registry = CollectorRegistry()
        self.outcomes = Counter(
            "dropscribe_outcomes", "Files handled, by outcome", ["outcome"], registry=self.registry
        )
        r = self.registry if uploads else CollectorRegistry()
        self.claims = Counter(
            "dropscribe_claims",
            "Claims on jobs in a shared ledger: won, elsewhere (another host had it), lost",
            ["result"],
            registry=r,
        )
        self.uploads = Counter(
            "dropscribe_uploads",
            "Uploads by endpoint and status",
            ["endpoint", "status"],
            registry=r,
        )
        self.upload_bytes = Counter(
            "dropscribe_upload_bytes", "Bytes of audio uploaded", ["endpoint"], registry=r
        )
        self.latency = Histogram(
            "dropscribe_upload_seconds",
            "Time from upload start to answer",
            ["endpoint"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600),
            registry=r,
        )
        self.retries = Counter(
            "dropscribe_retries", "Uploads tried again", ["endpoint"], registry=r
        )
        self.pauses = Counter(
            "dropscribe_endpoint_pauses", "Times an endpoint was paused", ["endpoint"], registry=r
        )
        self.paused = Gauge(
            "dropscribe_endpoint_paused", "1 while an endpoint is paused", ["endpoint"], registry=r
        )
        r = self.registry
        self.queue = Gauge(
            "dropscribe_queue_depth", "Files settled, waiting for a worker", registry=r
        )
        self.running = Gauge("dropscribe_running", "Files being transcribed", registry=r)
        self.settling = Gauge("dropscribe_settling", "Files waiting to settle", registry=r)
        self.watched = Gauge(
            "dropscribe_inbox_watched",
            "1 while an inbox's folder is there and watched",
            ["inbox"],
            registry=r,
        )
        self.shutdown = Gauge(
            "dropscribe_model_shutdown_timestamp_seconds",
            "When a model in use will be shut down, as its server (or its maker) says",
            ["endpoint", "model"],
            registry=r,
        )
        # steps33b: the steps after the transcript (steps/), by chat endpoint and step
        self.step_tokens = Counter(
            "dropscribe_step_tokens",
            "Tokens the steps after the transcript used, by chat endpoint, step and direction",
            ["endpoint", "step", "direction"],
            registry=r,
        )
        self.step_failures = Counter(
            "dropscribe_step_failures",
            "Tries of a step after the transcript that failed, by chat endpoint and step",
            ["endpoint", "step"],
            registry=r,
        )
        self.beat = time.monotonic()

    def stepped(self, endpoint: str, step: str, tokens: tuple[int, int], *, failed: bool) -> None:
        """One try of a step ended (its tokens as the endpoint's ``usage`` counted them)."""
        self.step_tokens.labels(endpoint, step, "in").inc(tokens[0])
        self.step_tokens.labels(endpoint, step, "out").inc(tokens[1])
        if failed:
            self.step_failures.labels(endpoint, step).inc()

    def retiring(self, found: Retiring) -> None:
        """The deprecation radar found a model in use that will be shut down."""
        midnight = dt.datetime.combine(found.shutdown, dt.time(), dt.UTC)
        self.shutdown.labels(found.endpoint, found.model).set(midnight.timestamp())

    def watch_ledger(self, counts: Callable[[], dict[str, int]]) -> None:
        self.registry.register(_LedgerCollector(counts, self._queued))

    def watch_spend(self, totals: Callable[[Periods], list[Total]]) -> None:
        """budget34: dropscribe_spend_total{endpoint,folder}, read from the ledger."""
        self.registry.register(SpendCollector(totals))

    def _queued(self) -> float:
        """Files settled here and waiting for a worker (the ledger has no row of them yet)."""
        return sum(s.value for family in self.queue.collect() for s in family.samples)

    def inboxes(self, watched: dict[str, bool]) -> None:
        """Which inboxes are watched now (those no longer configured disappear)."""
        self.watched.clear()
        for name, ok in watched.items():
            self.watched.labels(name).set(1 if ok else 0)

    def alive(self) -> None:
        """The main loop turned."""
        self.beat = time.monotonic()

    def uploaded(self, endpoint: str, status: int | str | None, elapsed: float, size: int) -> None:
        """One upload ended: with ``status`` 200, ``size`` bytes of audio went through."""
        self.uploads.labels(endpoint, str(status or "error")).inc()
        self.latency.labels(endpoint).observe(elapsed)
        if status == 200:
            self.upload_bytes.labels(endpoint).inc(size)


class MetricsServer:
    """Serves /metrics and /healthz on a thread until ``stop()``, with a bounded number of
    connections and time for each (ops/serving.py)."""

    def __init__(self, metrics: Metrics, host: str, port: int) -> None:
        def answer(request: Request) -> Answer:
            if request.path == "/healthz":
                stuck = time.monotonic() - metrics.beat
                if stuck < STUCK_SECONDS:
                    return plain("200 OK", "ok\n")
                return plain("503 Service Unavailable", f"main loop stuck for {stuck:.0f}s\n")
            try:
                encoder, content_type = choose_encoder(request.headers.get("accept", ""))
                body = encoder(metrics.registry)
            except (TypeError, ValueError):  # attack19: "text/plain; version=x" (TypeError)
                content_type, body = CONTENT_TYPE_PLAIN_0_0_4, generate_latest(metrics.registry)
            headers = [("Content-Type", content_type)]
            if "gzip" in request.headers.get("accept-encoding", ""):
                body = gzip.compress(body)
                headers.append(("Content-Encoding", "gzip"))
            return Answer("200 OK", headers, body)

        try:
            self._server = BoundedServer(host, port, answer)
        except OSError as exc:
            raise SetupError(
                f"cannot serve metrics on {host}:{port}: {exc.strerror or exc}"
                " (metrics: in the config)"
            ) from None
        self.address = self._server.address

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()
