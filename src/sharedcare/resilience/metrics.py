"""A small Prometheus registry: counters, gauges and histograms with labels, rendered in the text format 0.0.4.

Kept in-house (about a hundred lines) rather than a dependency, and one registry per Server rather than a module
global, so tests that build many servers never share counts. Thread-safe: the event loop, worker threads and the
replica's follower thread all record into it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Sequence

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
LAG_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.0, 5.0, 10.0, 30.0)

Labels = tuple[str, ...]


class Metric:
    kind = "untyped"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        self.name, self.help, self.labelnames = name, help, tuple(labels)
        self._lock = threading.Lock()

    def header(self) -> list[str]:
        return [f"# HELP {self.name} {self.help}", f"# TYPE {self.name} {self.kind}"]

    def render(self) -> list[str]:
        raise NotImplementedError

    def _labels(self, values: Labels, extra: str = "") -> str:
        parts = [f'{k}="{_escape(v)}"' for k, v in zip(self.labelnames, values, strict=True)]
        if extra:
            parts.append(extra)
        return "{" + ",".join(parts) + "}" if parts else ""


class Counter(Metric):
    kind = "counter"

    def __init__(self, name: str, help: str, labels: Sequence[str] = ()) -> None:
        super().__init__(name, help, labels)
        self._values: dict[Labels, float] = {}

    def inc(self, *labels: str, amount: float = 1.0) -> None:
        with self._lock:
            self._values[labels] = self._values.get(labels, 0.0) + amount

    def value(self, *labels: str) -> float:
        return self._values.get(labels, 0.0)

    def render(self) -> list[str]:
        with self._lock:
            items = sorted(self._values.items())
        return [*self.header(), *(f"{self.name}{self._labels(k)} {_num(v)}" for k, v in items)]


class Gauge(Counter):
    """A value that goes up and down; `source` (if given) is called at each scrape instead."""

    kind = "gauge"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), source: Callable[[], float | None] | None = None
    ) -> None:
        super().__init__(name, help, labels)
        self.source = source

    def set(self, value: float, *labels: str) -> None:
        with self._lock:
            self._values[labels] = value

    def render(self) -> list[str]:
        if self.source is not None:
            value = self.source()
            if value is None:
                return self.header()
            self.set(value)
        return super().render()


class Histogram(Metric):
    kind = "histogram"

    def __init__(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> None:
        super().__init__(name, help, labels)
        self.buckets = tuple(buckets)
        self._series: dict[Labels, list[float]] = {}  # per-bucket counts, then +Inf count, then sum

    def observe(self, value: float, *labels: str) -> None:
        with self._lock:
            series = self._series.get(labels)
            if series is None:
                series = self._series[labels] = [0.0] * (len(self.buckets) + 2)
            for i, bound in enumerate(self.buckets):
                if value <= bound:
                    series[i] += 1
            series[-2] += 1
            series[-1] += value

    def render(self) -> list[str]:
        with self._lock:
            items = sorted((k, list(v)) for k, v in self._series.items())
        out = self.header()
        for labels, series in items:
            bounds = [*(_num(b) for b in self.buckets), "+Inf"]
            for bound, count in zip(bounds, series, strict=False):
                le = self._labels(labels, 'le="' + bound + '"')
                out.append(f"{self.name}_bucket{le} {_num(count)}")
            out.append(f"{self.name}_count{self._labels(labels)} {_num(series[-2])}")
            out.append(f"{self.name}_sum{self._labels(labels)} {_num(series[-1])}")
        return out


class Registry:
    def __init__(self) -> None:
        self.metrics: dict[str, Metric] = {}

    def add(self, metric: Metric) -> Metric:
        self.metrics[metric.name] = metric
        return metric

    def counter(self, name: str, help: str, labels: Sequence[str] = ()) -> Counter:
        return self.metrics.setdefault(name, Counter(name, help, labels))  # type: ignore[return-value]

    def gauge(
        self, name: str, help: str, labels: Sequence[str] = (), source: Callable[[], float | None] | None = None
    ) -> Gauge:
        return self.metrics.setdefault(name, Gauge(name, help, labels, source))  # type: ignore[return-value]

    def histogram(
        self, name: str, help: str, labels: Sequence[str] = (), buckets: Sequence[float] = LATENCY_BUCKETS
    ) -> Histogram:
        return self.metrics.setdefault(name, Histogram(name, help, labels, buckets))  # type: ignore[return-value]

    def render(self) -> bytes:
        lines: list[str] = []
        for metric in self.metrics.values():
            lines += metric.render()
        return ("\n".join(lines) + "\n").encode()


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _num(value: float) -> str:
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(int(value)) if float(value).is_integer() else repr(float(value))
