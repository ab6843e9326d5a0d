"""Fellegi-Sunter scoring: each field's agreement level adds log2(m/u) bits of evidence.

m = P(level | same person), u = P(level | different people). Both come from `weights.json`, estimated from data
by `tools/estimate_match_weights.py` (u from random pairs, m by expectation-maximisation), never guessed.
The thresholds are in bits of match weight and can be overridden by settings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import orjson

from sharedcare.matching.compare import FIELDS, LEVELS, Vector

ADDRESS, PHONE = FIELDS.index("address"), FIELDS.index("phone")


@dataclass(frozen=True)
class Weights:
    """Per-field, per-level weights in bits; index 0 of each row is level 1."""

    bits: tuple[tuple[float, ...], ...]
    prior: float  # P(same person) for a pair that shares a blocking key
    upper: float  # match weight at or above which a pair links
    lower: float  # match weight below which a pair does not link; in between goes to review
    source: str = ""

    def score(self, vector: Vector) -> float:
        """The match weight: the sum of each field's bits, except that address and phone agreeing together count
        once (the larger), because a household shares both: the pair is one piece of evidence, not two."""
        total = 0.0
        for row, level in zip(self.bits, vector, strict=True):
            if level:
                total += row[level - 1]
        address, phone = vector[ADDRESS], vector[PHONE]
        if address in (1, 2) and phone == 1:
            total -= min(self.bits[ADDRESS][address - 1], self.bits[PHONE][0])
        return total

    def probability(self, weight: float) -> float:
        """P(same person | comparison), from the match weight and the prior."""
        logit = weight + math.log2(self.prior / (1.0 - self.prior))
        return 1.0 / (1.0 + 2.0 ** (-max(min(logit, 60.0), -60.0)))

    def with_thresholds(self, upper: float | None, lower: float | None) -> Weights:
        up = self.upper if upper is None else upper
        low = self.lower if lower is None else lower
        if low > up:
            raise ValueError(f"match lower threshold {low} is above the upper threshold {up}")
        return Weights(self.bits, self.prior, up, low, self.source)


def weights_from_table(table: dict) -> Weights:
    """Weights from the JSON table the estimation tool writes ({fields: {name: {m: [...], u: [...]}}, ...})."""
    rows = []
    for name in FIELDS:
        entry = table["fields"][name]
        m, u = entry["m"], entry["u"]
        if len(m) != len(LEVELS[name]) or len(u) != len(LEVELS[name]):
            raise ValueError(f"weights for {name} need {len(LEVELS[name])} levels")
        rows.append(tuple(math.log2(max(mi, 1e-9) / max(ui, 1e-9)) for mi, ui in zip(m, u, strict=True)))
    return Weights(
        tuple(rows), float(table["prior"]), float(table["upper"]), float(table["lower"]), str(table.get("source", ""))
    )


def load_weights(path: str | Path | None = None) -> Weights:
    """The committed weights (package data), or a table at `path`."""
    if path:
        raw = Path(path).read_bytes()
    else:
        raw = resources.files("sharedcare.matching").joinpath("weights.json").read_bytes()
    return weights_from_table(orjson.loads(raw))
