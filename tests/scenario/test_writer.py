"""Writing scenario directories: what is written reads back equal."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.network import NodeType, RateBand, RateCard
from models.order import Order, OrderLine, ShipTo
from models.rules import (
    Condition,
    Fallback,
    FallbackAction,
    Policy,
    RuleSet,
    SlaMode,
    Strategy,
)
from models.scenario import Scenario
from router.sample import sample_scenario
from router.scenario import order_to_json, read_orders, read_scenario, write_scenario
from router.scenario.reader import ORDERS_FILE, TABLES


def test_sample_round_trips(tmp_path: Path) -> None:
    """A (small) sample scenario written and read back is equal to the original."""
    scenario = sample_scenario(3, n_dcs=3, n_stores=30, n_skus=200, n_orders=150)
    write_scenario(scenario, tmp_path)
    assert read_scenario(tmp_path) == scenario


def test_tiny_round_trips(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """The tiny scenario read, written and read again is unchanged."""
    write_scenario(tiny_scenario, tmp_path)
    assert read_scenario(tmp_path) == tiny_scenario


def test_writing_is_stable(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """Writing what was read from a written scenario gives the same bytes."""
    write_scenario(tiny_scenario, tmp_path / "a")
    write_scenario(read_scenario(tmp_path / "a"), tmp_path / "b")
    for path in sorted((tmp_path / "a").iterdir()):
        assert path.read_bytes() == (tmp_path / "b" / path.name).read_bytes(), path.name


def test_csv_headers_are_the_format_columns(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """Each CSV file is written with every column of the format, required ones first."""
    write_scenario(tiny_scenario, tmp_path)
    for table in TABLES:
        header = (tmp_path / table.name).read_text().splitlines()[0]
        assert header.split(",") == list(table.columns)


def test_unset_values_are_written_blank(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """An unlimited capacity is a blank cell; tags are sorted and ``;``-joined."""
    write_scenario(tiny_scenario, tmp_path)
    nodes = pd.read_csv(tmp_path / "nodes.csv", dtype=str, keep_default_na=False)
    assert nodes["daily_order_capacity"].tolist() == ["", "5000", "40"]
    assert nodes["tags"].tolist()[2] == "region:central;urban"
    assert nodes["cutoff_local_time"].tolist() == ["19:00", "18:00", "16:00"]


def test_rules_round_trip(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """Default rules and rules with every element set both read back equal."""
    every = Policy(
        split_penalty=2.5,
        lateness_penalty_per_day=0.1 + 0.2,
        backorder_cost_per_unit=80.0,
        unit_penalty_by_node_type={NodeType.STORE: 1.25, NodeType.DROPSHIP: 0.5},
        priority_bonus=0.75,
        distance_cost_per_km=0.002,
        node_types=frozenset({NodeType.DC, NodeType.THREE_PL}),
        node_tags=frozenset({"urban"}),
        exclude_node_tags=frozenset({"closed"}),
        nodes=frozenset({"DC-EAST", "DC-WEST"}),
        exclude_nodes=frozenset({"ST-CHI"}),
        max_distance_km=1200.5,
        same_country=True,
        capabilities=frozenset({"hazmat"}),
        blocked=frozenset({("DC-WEST", "SKU-3")}),
        min_buffer_by_node_type={NodeType.STORE: 2},
        max_shipments=3,
        ship_complete=True,
        sla=SlaMode.HARD,
        no_split_below_value=25.0,
    )
    when = Condition(
        channels=frozenset({"web"}),
        segments=frozenset({"vip"}),
        services=frozenset({"ground"}),
        countries=frozenset({"US"}),
        regions=frozenset({"CA", "NY"}),
        postal_code_prefixes=frozenset({"9"}),
        sku_attributes=frozenset({"hazmat"}),
        min_order_value=10.0,
        max_order_value=500.0,
    )
    full = RuleSet(
        name="full",
        description="every element",
        groups={"coasts": frozenset({"DC-EAST", "DC-WEST"})},
        strategies=(
            Strategy("first", when, every, Fallback(FallbackAction.NEXT, 1, 3), "the first"),
            Strategy("last", fallback=Fallback(FallbackAction.REJECT, reason="no stock")),
        ),
    )
    for rules in (RuleSet(), full):
        write_scenario(dataclasses.replace(tiny_scenario, rules=rules), tmp_path)
        assert read_scenario(tmp_path).rules == rules


def _order(**changes: object) -> Order:
    base = Order(
        order_id="O-9",
        created_at=datetime(2026, 11, 20, 8, 30, tzinfo=UTC),
        ship_to=ShipTo(40.7, -74.0, "US", "10001"),
        service="ground",
        lines=(OrderLine("1", "SKU-1", 2),),
    )
    return dataclasses.replace(base, **changes)  # type: ignore[arg-type]


def test_order_json_leaves_out_unset_fields() -> None:
    """Unset deliver-by, max shipments and pickup node are absent; UTC is written as 'Z'."""
    document = order_to_json(_order())
    assert document["created_at"] == "2026-11-20T08:30:00Z"
    assert not {"deliver_by", "max_shipments", "pickup_node_id"} & set(document)
    assert document["lines"] == [{"line_id": "1", "sku": "SKU-1", "quantity": 2}]


def test_order_json_writes_set_fields() -> None:
    """Set optional fields are written: the date as YYYY-MM-DD, a non-UTC offset kept."""
    order = _order(
        created_at=datetime(2026, 11, 20, 8, 30, tzinfo=timezone(timedelta(hours=-5))),
        deliver_by=date(2026, 11, 25),
        max_shipments=2,
        pickup_node_id="ST-CHI",
    )
    document = order_to_json(order)
    assert document["created_at"] == "2026-11-20T08:30:00-05:00"
    assert document["deliver_by"] == "2026-11-25"
    assert document["max_shipments"] == 2
    assert document["pickup_node_id"] == "ST-CHI"


def test_orders_file_has_one_object_per_line(tmp_path: Path, tiny_scenario: Scenario) -> None:
    """orders.jsonl holds one JSON object per line, in scenario order."""
    write_scenario(tiny_scenario, tmp_path)
    lines = (tmp_path / ORDERS_FILE).read_text().splitlines()
    ids = [o.order_id for o in tiny_scenario.orders]
    assert [json.loads(line)["order_id"] for line in lines] == ids


_ids = st.text(alphabet="ABCXYZ0123456789-_", min_size=1, max_size=8)
_orders = st.builds(
    Order,
    order_id=_ids,
    created_at=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    ship_to=st.builds(
        ShipTo,
        latitude=st.floats(-90, 90),
        longitude=st.floats(-180, 180),
        country=st.sampled_from(["US", "CA"]),
        postal_code=st.text(alphabet="0123456789", max_size=5),
    ),
    service=st.sampled_from(["ground", "next_day"]),
    lines=st.lists(
        st.tuples(st.sampled_from(["SKU-1", "SKU-2", "SKU-3"]), st.integers(1, 2 * 10**5)),
        min_size=1,
        max_size=5,
    ).map(lambda items: tuple(OrderLine(str(i + 1), s, q) for i, (s, q) in enumerate(items))),
    channel=st.sampled_from(["", "web", "app"]),
    segment=st.sampled_from(["", "member"]),
    # Never before created_at, which validation refuses.
    deliver_by=st.none() | st.dates(date(2100, 1, 2), date(2200, 1, 1)),
    ship_complete=st.booleans(),
    allow_partial=st.booleans(),
    max_shipments=st.none() | st.integers(1, 9),
    pickup_node_id=st.sampled_from([None, "ST-CHI"]),
)


@settings(max_examples=60, deadline=None)
@given(orders=st.lists(_orders, max_size=4, unique_by=lambda o: o.order_id))
def test_any_valid_orders_round_trip(
    tmp_path_factory: pytest.TempPathFactory, tiny_scenario: Scenario, orders: list[Order]
) -> None:
    """Any valid orders on the tiny network read back equal, floats and timestamps exact."""
    scenario = dataclasses.replace(tiny_scenario, orders=tuple(orders))
    directory = tmp_path_factory.mktemp("orders")
    write_scenario(scenario, directory)
    assert read_orders(directory / ORDERS_FILE, scenario.network) == tuple(orders)


_bands = st.lists(
    st.builds(
        RateBand,
        service=st.sampled_from(["ground", "two_day"]),
        max_distance_km=st.floats(min_value=1e-3, max_value=4e4),
        base_cost=st.floats(min_value=0, max_value=1e4),
        cost_per_kg=st.floats(min_value=0, max_value=1e3),
        transit_days=st.integers(0, 30),
    ),
    min_size=1,
    max_size=6,
    unique_by=lambda b: (b.service, b.max_distance_km),
)


@settings(max_examples=60, deadline=None)
@given(bands=_bands)
def test_any_rate_card_round_trips(
    tmp_path_factory: pytest.TempPathFactory, tiny_scenario: Scenario, bands: list[RateBand]
) -> None:
    """Any valid rate card written to rates.csv reads back equal, every float exact."""
    network = dataclasses.replace(tiny_scenario.network, rates=RateCard.of(bands))
    scenario = dataclasses.replace(tiny_scenario, network=network, orders=())
    directory = tmp_path_factory.mktemp("rates")
    write_scenario(scenario, directory)
    assert read_scenario(directory).network.rates == network.rates
