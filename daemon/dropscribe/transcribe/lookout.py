"""The deprecation radar at work: at start and once a day, each endpoint in use is asked
for its models (``GET {base}/models``, where its kind has it), and every model in use
that will be shut down is said (``model.retiring``), kept in the ledger for ``status``
and ``check-config``, and given to the metrics."""

from __future__ import annotations

import datetime as dt
import threading
from typing import TYPE_CHECKING, NamedTuple

import structlog

from dropscribe.config import rules
from dropscribe.errors import LedgerError, TranscriptionError
from dropscribe.transcribe import radar
from dropscribe.transcribe.limits import where
from dropscribe.vocab import fallbacks as several

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

    from dropscribe.ledger.interface import Capabilities, CapabilityReport
    from dropscribe.vocab.config import Config
    from dropscribe.vocab.endpoints import Endpoint

log = structlog.get_logger("dropscribe")

NOTICE = "notice"  # the capabilities row's verdict for what the radar found
SHUTDOWN = ("shutdown", "date")  # its param and value; the date is in its reason


class Notice(NamedTuple):
    """A shutdown the ledger holds: for ``status`` and ``check-config``."""

    server: str
    model: str
    shutdown: dt.date
    source: str


def in_use(config: Config) -> dict[str, set[str]]:
    """``{endpoint name: models}`` that some folder or rule sends files to."""
    found: dict[str, set[str]] = {}
    for inbox in config.inboxes:
        base = rules.effective(inbox, inbox.path / "x.wav")
        for layer in inbox.layers:
            name = layer.values.get("endpoint", base.endpoint)
            model = layer.values.get("model", base.model)
            found.setdefault(str(name), set()).add(str(model))
            rest = layer.values.get("fallbacks") or ()  # routing34b: the list and model map
            models = layer.values.get("models") or ()
            for other, mapped in several.chain(str(name), str(model), rest, models)[1:]:
                found.setdefault(other, set()).add(mapped)
            for other, mapped in models:
                found.setdefault(other, set()).add(mapped)
        for name, model in several.chain(base.endpoint, base.model, base.fallbacks, base.models):
            found.setdefault(name, set()).add(model)
    return {name: models for name, models in found.items() if name in config.endpoints}


def models_of(config: Config) -> set[str]:
    """Every model some folder uses, on any endpoint."""
    return {model for models in in_use(config).values() for model in models}


def notices(ledger: CapabilityReport) -> list[Notice]:
    """Every shutdown the radar kept, for ``status``."""
    out = []
    for server, model, param, value, reason in ledger.capabilities_with(NOTICE):
        if (param, value) != SHUTDOWN or not reason:
            continue
        date, _, source = reason.partition(" ")
        try:
            out.append(Notice(server, model, dt.date.fromisoformat(date), source))
        except ValueError:
            continue
    return out


class Radar:
    """Asks, says, keeps; ``run`` does so at start and every day until ``stop`` is set."""

    def __init__(
        self,
        ledger: Capabilities,
        config: Callable[[], Config],
        *,
        found: Callable[[radar.Retiring], None] | None = None,
        today: Callable[[], dt.date] = lambda: dt.datetime.now(dt.UTC).date(),
    ) -> None:
        self._ledger = ledger
        self._config = config
        self._found = found
        self._today = today
        self._closing = threading.Lock()  # held while the ledger is written
        self._closed = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> Radar:
        """Look now and then daily, on a thread of its own."""
        thread = threading.Thread(target=self.run, args=(self._stop,), name="dropscribe-radar")
        thread.daemon = True  # a hung catalogue request never holds up the daemon's exit
        thread.start()
        self._thread = thread
        return self

    def close(self, timeout: float = 0.0) -> bool:
        """From now on nothing is written (the ledger is about to close); a look in
        flight may end its request, but it writes nothing. Waits up to ``timeout``
        seconds for the thread to end (in its daily wait, at once): whether it has. A
        thread left running when the interpreter is torn down can crash it."""
        self._stop.set()
        with self._closing:
            self._closed = True
        if self._thread is not None:
            self._thread.join(timeout)
        return self._thread is None or not self._thread.is_alive()

    def run(self, stop: threading.Event) -> None:
        first = True
        while True:
            self.check(first=first)
            first = False
            if stop.wait(radar.DAY):
                return

    def check(self, *, first: bool = False) -> list[radar.Retiring]:
        """One look at every endpoint in use; what will be shut down."""
        config = self._config()  # as last reloaded
        everything = []
        for name, models in sorted(in_use(config).items()):
            endpoint = config.endpoints[name]
            found = radar.retiring(name, endpoint.kind, models, self._ask(endpoint))
            for item in found:
                self._say(endpoint, item, first=first)
            everything += found
        return everything

    @staticmethod
    def _ask(endpoint: Endpoint) -> dict[str, dt.date | None] | None:
        """What the endpoint's server says of its models' shutdowns (None: not asked)."""
        if endpoint.kind not in radar.LISTING:
            return None
        from dropscribe.transcribe import http  # noqa: PLC0415 - status and check-config need no httpx

        client = http.Client(endpoint)
        try:
            return radar.listed(client.catalogue())
        except TranscriptionError as exc:
            log.info(
                "models.unlisted",
                endpoint=endpoint.name,
                error=exc.message,
                action="shutdown dates from the announced table only",
            )
            return None
        finally:
            client.close()

    def _say(self, endpoint: Endpoint, item: radar.Retiring, *, first: bool) -> None:
        today = self._today()
        with self._closing:
            if self._closed:
                return
            try:
                self._ledger.record_capability(
                    where(endpoint), item.model, *SHUTDOWN, NOTICE, f"{item.shutdown} {item.source}"
                )
            except LedgerError as exc:  # said, not a crash of the radar (lock17)
                log.warning(
                    "ledger.write_failed",
                    error=str(exc),
                    action="the shutdown notice is recorded at the next look",
                )
        if self._found is not None:
            self._found(item)
        if radar.worth_saying(item, today, first=first):
            left = item.days_left(today)
            log.warning(
                "model.retiring" if left >= 0 else "model.shut_down",
                endpoint=item.endpoint,
                model=item.model,
                shutdown_date=item.shutdown.isoformat(),
                days_left=left,
                source=item.source,
                action=item.what_to_do(endpoint.kind),
            )


def lines(found: Iterable[Notice | radar.Retiring], today: dt.date) -> list[str]:
    """What ``status`` and ``check-config`` print of the shutdowns."""
    out = []
    for item in sorted(found, key=lambda n: (n.shutdown, n.model)):
        left = (item.shutdown - today).days
        when = f"in {left} days" if left >= 0 else f"{-left} days ago"
        where_ = getattr(item, "endpoint", None) or getattr(item, "server", "")
        out.append(f"model {item.model} on {where_} shuts down {item.shutdown} ({when})")
    return out


def announced_lines(config: Config, today: dt.date) -> list[str]:
    """``check-config``'s lines: models in use whose shutdown was announced."""
    found = [
        item
        for name, models in in_use(config).items()
        for item in radar.retiring(name, config.endpoints[name].kind, models, None)
    ]
    return [
        f"{line}: {item.what_to_do(config.endpoints[item.endpoint].kind)}"
        for line, item in zip(
            lines(found, today), sorted(found, key=lambda n: (n.shutdown, n.model)), strict=True
        )
    ]
