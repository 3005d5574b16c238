"""One worker host: the threads of one process that run jobs, the JobRunner they
share and the clients it sends with; how they start, take a reloaded config, and
are torn down. The main process hosts its workers with it (``processes: 1``), and
so does each worker process (``child.py``) for its share of them."""

from __future__ import annotations

from typing import TYPE_CHECKING

from dropscribe.config import rules
from dropscribe.dispatch.pool import Pool
from dropscribe.jobs.runner import JobRunner
from dropscribe.transcribe.engines import make_client

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Hashable
    from contextlib import AbstractContextManager
    from pathlib import Path

    import httpx

    from dropscribe.jobs.job import Outcome, SettledFile, Tally
    from dropscribe.ledger.interface import JobLedger
    from dropscribe.ops.metrics import Metrics
    from dropscribe.vocab.config import Config, Inbox
    from dropscribe.vocab.endpoints import Endpoint
    from dropscribe.vocab.states import JobKey


def share(endpoint: Endpoint, processes: int) -> Endpoint:
    """One process's part of an endpoint's concurrency (at least one upload)."""
    share = max(1, endpoint.max_concurrency // processes)
    return endpoint.model_copy(update={"max_concurrency": share})


class Threads:
    """Worker threads in this process, sharing one JobRunner: the thread Pool's interface,
    plus ``reload`` and a ``close`` that closes the clients once no job runs."""

    failure: str | None = None  # threads do not die as they start; processes might

    def __init__(  # noqa: PLR0913 - each is a part the host is given, all keywords
        self,
        config: Config,
        ledger: JobLedger,
        abort: threading.Event,
        *,
        once: bool,
        metrics: Metrics,
        threads: int,
        processes: int = 1,
        transport: httpx.BaseTransport | None = None,
        queue_size: int | None = None,
        on_done: Callable[[SettledFile], None] | None = None,
        key_lock: Callable[[JobKey], AbstractContextManager[object]] | None = None,
        report: Callable[[SettledFile, Outcome | None], None] | None = None,
    ) -> None:
        self._config = config
        self._processes = processes  # this host's endpoints are its share of 1/processes
        self._transport = transport
        self._abort = abort
        clients = {
            name: make_client(endpoint, transport, abort)
            for name, endpoint in self._endpoints(config).items()
        }
        self.runner = JobRunner(
            ledger,
            clients,
            abort,
            work=config.state_dir / "work",
            once=once,
            inbox_of=self.inbox_of,
            metrics=metrics,
            key_lock=key_lock,
            report=report,
        )
        # until16: the runner returns each file as its job ended (with ``until``, wake15),
        # and the Pool hands that on: no map of our own beside the runner's
        # pool20: once a stop is asked (``abort``) a worker freed starts no job
        self._pool: Pool[SettledFile] = Pool(
            threads,
            self.runner,
            key=_path,
            on_done=on_done,
            queue_size=queue_size,
            halted=abort.is_set,
        )

    @property
    def tally(self) -> Tally:
        return self.runner.tally

    def inbox_of(self, path: Path) -> Inbox | None:
        """The inbox of ``path`` as the config is now (a reload may have changed it)."""
        return rules.inbox_of(self._config, path)

    def start(self) -> None:
        self._pool.start()

    def submit(self, file: SettledFile) -> bool:
        return self._pool.submit(file)

    def in_flight(self, path: Hashable) -> bool:
        return self._pool.in_flight(path)

    def idle(self) -> bool:
        return self._pool.idle()

    def counts(self) -> tuple[int, int]:
        """(queued, running)."""
        return self._pool.counts()

    def reload(self, config: Config) -> None:
        """A reloaded config (its restart-only keys as they were): its inboxes for the jobs
        that start from now on, its endpoints for every upload (unchanged ones keep their
        client, and its state)."""
        old, self._config = self._config, config
        before, uploader = self._endpoints(old), self.runner.uploader
        uploader.set_clients(
            {
                name: uploader.client(name)
                if before.get(name) == endpoint
                else make_client(endpoint, self._transport, self._abort)
                for name, endpoint in self._endpoints(config).items()
            }
        )

    def close(self, grace: float) -> int:
        """Drop what has not started, give running jobs ``grace`` seconds (and the margin
        of ``Pool.close``); the clients are closed unless some still run. Returns how many
        still ran."""
        stragglers = self._pool.close(grace)
        if not stragglers:
            for client in self.runner.uploader.clients():
                client.close()
        return stragglers

    def _endpoints(self, config: Config) -> dict[str, Endpoint]:
        if self._processes == 1:
            return dict(config.endpoints)
        return {name: share(ep, self._processes) for name, ep in config.endpoints.items()}


def _path(file: SettledFile) -> Path:
    return file.path
