"""What every seed of the speaker protocol shares: the model, the corpus and the protocol's settings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class GridJob:
    """The model, the corpus and the protocol's settings (``fixed``: the integer rule; ``frontend``: its input
    features; ``others``: the list forgetting is measured on). One object, so the serial grid, its Ray tasks, a
    sweep's trials and the per-seed runs hand the same settings on (and Ray stores it once)."""

    model: object
    corpus: object
    shots: object
    recipe: object
    fixed: bool = False
    test_limit: int | None = None
    baseline: bool = False
    frontend: str = "float"
    others: str = "testing"
