"""The worker processes' upload metrics, merged for the main process's ``/metrics``
(``processes: N``: each child sends its own as ``Figures``)."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, Any

from prometheus_client.metrics_core import Metric

if TYPE_CHECKING:
    from collections.abc import Iterator

    from dropscribe.dispatch.child import Snapshot


class MergedCollector:
    """The children's upload metrics summed (gauges: the largest) at scrape time."""

    def __init__(self) -> None:
        self.latest: dict[int, Snapshot] = {}
        self._lock = threading.Lock()

    def update(self, index: int, data: Snapshot) -> None:
        with self._lock:
            self.latest[index] = data

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            children = list(self.latest.values())
        families: dict[str, tuple[str, str, dict[tuple[str, tuple[Any, ...]], float]]] = {}
        for data in children:
            for name, doc, kind, samples in data:
                _, _, values = families.setdefault(name, (doc, kind, {}))
                for sample, labels, value in samples:
                    if sample.endswith("_created"):
                        continue
                    key = (sample, tuple(sorted(labels.items())))
                    old = values.get(key)
                    if old is None:
                        values[key] = value
                    else:
                        values[key] = max(old, value) if kind == "gauge" else old + value
        for name, (doc, kind, values) in families.items():
            family = Metric(name, doc, kind)
            for (sample, pairs), value in values.items():
                family.add_sample(sample, dict(pairs), value)
            yield family
