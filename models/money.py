"""Money inside the solver: integers in 1/10,000 of a currency unit, scaled once at the boundary.

Costs in files and messages are decimal currency amounts. The engine converts each to an
integer number of *units* with :func:`to_units` before building a model, so the solver works
on exact integers and the objective it reports is exact; :func:`from_units` converts back.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal

MONEY_SCALE = 10_000
"""Solver money units per currency unit (1 unit = 0.01 cent)."""


def to_units(amount: float | Decimal | int) -> int:
    """Convert a currency amount to integer solver units, rounding half to even."""
    scaled = Decimal(str(amount)) * MONEY_SCALE
    return int(scaled.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def from_units(units: int) -> float:
    """Convert integer solver units back to a currency amount."""
    return units / MONEY_SCALE
