"""The scenario format: a directory of CSV, YAML and JSON Lines files, read and written.

``nodes.csv``, ``skus.csv``, ``stock.csv``, ``rates.csv`` (required), ``calendars.csv``,
``rules.yaml`` and ``orders.jsonl`` (optional); :func:`read_scenario` validates all of them
and reports every bad field with its file, line and column.
"""

from __future__ import annotations

from router.scenario.reader import (
    read_forecast,
    read_orders,
    read_replenishment,
    read_rules,
    read_scenario,
    read_stock,
)
from router.scenario.writer import order_to_json, write_scenario

__all__ = [
    "order_to_json",
    "read_forecast",
    "read_orders",
    "read_replenishment",
    "read_rules",
    "read_scenario",
    "read_stock",
    "write_scenario",
]
