"""The metric of spend (``dropscribe_spend_total{endpoint,folder}``), read from the
ledger's ``spend`` table at scrape time: every host's and process's requests, reserved
or settled (``ledger/spend.py``). A gauge: a reservation settled at a lower cost than
its estimate lowers it."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from prometheus_client.core import GaugeMetricFamily

from dropscribe.errors import DropscribeError
from dropscribe.vocab.budget import periods

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from prometheus_client.metrics_core import Metric

    from dropscribe.ledger.spend import Total
    from dropscribe.vocab.budget import Periods


class SpendCollector:
    """Spend per endpoint and folder, ever, in the currency of the prices."""

    def __init__(self, totals: Callable[[Periods], list[Total]]) -> None:
        self._totals = totals

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(
            "dropscribe_spend_total",
            "What requests cost, by endpoint and folder (duration x price, or the billed"
            " length), in the currency of the prices; reservations of requests in flight too",
            labels=["endpoint", "folder"],
        )
        try:
            totals = self._totals(periods(time.time()))
        except DropscribeError:  # a shared ledger out of reach: no figures this scrape
            return
        for row in totals:
            family.add_metric([row.endpoint, row.folder], row.ever)
        yield family
