"""Done when: the dashboard, the alert rules and docs/operations.md match the metrics.

The shipped dashboard and alert rules use only metrics the processes export, and
docs/operations.md describes every metric they export.

A rule or panel naming a metric that does not exist stays silent for ever; a metric the
operations guide does not list is one nobody knows how to read.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import yaml
from prometheus_client import CollectorRegistry

from router.intake.observe import HttpMetrics
from router.service.metrics import ServiceMetrics

ROOT = Path(__file__).resolve().parent.parent
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "order-router.json"
OPERATIONS = ROOT / "docs" / "operations.md"
OURS = re.compile(r"\b(?:grpc_server|router|http)_[a-z_]+\b")
"""Names of our series in a PromQL expression (``probe_success``, ``up``: other exporters')."""
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_count", "_sum"), "gauge": ("",)}


def exported() -> dict[str, str]:
    """Every series name the service and the gateway can export, to its family's name."""
    service = ServiceMetrics()
    service.watch_pool(dict)  # the pool's families, as a PostgreSQL ledger adds them
    names: dict[str, str] = {}
    for registry in (service.registry, HttpMetrics().registry):
        for family in _families(registry):
            kind = family.type if family.type in SUFFIXES else "gauge"
            for suffix in SUFFIXES[kind]:
                names[family.name + suffix] = family.name
    return names


def _families(registry: CollectorRegistry) -> list:
    return list(registry.collect())


def referenced(expr: str) -> set[str]:
    """Our series names in ``expr`` (label names inside braces are not series)."""
    without_labels = re.sub(r"\{[^}]*\}", "", expr)
    without_groupings = re.sub(r"\b(?:by|without|on|ignoring)\s*\([^)]*\)", "", without_labels)
    return set(OURS.findall(without_groupings))


def test_alert_rules_are_well_formed_and_name_exported_metrics():
    """Each rule has an alert name, an expression over exported series, severity, summary."""
    rules = [
        rule for group in yaml.safe_load(ALERTS.read_text())["groups"] for rule in group["rules"]
    ]
    assert len({rule["alert"] for rule in rules}) == len(rules) >= 10
    names = exported()
    for rule in rules:
        assert rule["labels"]["severity"] in ("page", "ticket"), rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]
        unknown = referenced(rule["expr"]) - names.keys()
        assert not unknown, f"{rule['alert']} names series nobody exports: {unknown}"


def test_dashboard_panels_query_exported_metrics():
    """Panel ids are unique; every target has an expression over exported series."""
    dashboard = json.loads(DASHBOARD.read_text())
    panels = dashboard["panels"]
    assert len({p["id"] for p in panels}) == len(panels)
    names = exported()
    targets = [t for p in panels if p["type"] != "row" for t in p["targets"]]
    assert len(targets) >= 20
    for target in targets:
        unknown = referenced(target["expr"]) - names.keys()
        assert not unknown, f"{target['expr']} names series nobody exports: {unknown}"


def test_operations_guide_lists_every_exported_metric():
    """docs/operations.md (or, for look-ahead prices, its page) names each family exported."""
    guide = OPERATIONS.read_text() + (ROOT / "docs" / "lookahead-service.md").read_text()
    families = set(exported().values())
    missing = {
        family
        for family in families
        if not any(f"`{family}{suffix}" in guide for suffix in ("", "_total"))
    }
    assert not missing, f"not in docs/operations.md: {sorted(missing)}"


def test_the_reference_finder_sees_through_labels_and_groupings():
    """``referenced`` finds series names, not label names, in by()/on() or selectors."""
    expr = (
        'sum by (router_x) (rate(router_a_total{router_label="x"}[5m])) '
        "/ on (instance) http_requests_total"
    )
    assert referenced(expr) == {"router_a_total", "http_requests_total"}
