"""The network: nodes that hold and ship stock, the SKU catalogue, stock positions, rates."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, fields
from datetime import time
from enum import StrEnum
from typing import TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from models import fields as f
from models.calendar import CalendarKind, Calendars
from models.errors import Violations, quoted

MAX_PRIORITY = 1000
"""Node priorities lie in ±this; with the rules' ``priority_bonus`` (at most 100,000 a point)
a shipment's priority penalty stays far inside the solver's int64 sums."""


class NodeType(StrEnum):
    """What kind of location a node is."""

    DC = "dc"
    STORE = "store"
    DARK_STORE = "dark_store"
    THREE_PL = "3pl"
    DROPSHIP = "dropship"

    @staticmethod
    def parse(value: object, field: str, v: Violations) -> NodeType | None:
        """The node type named ``value`` (any case); ``None`` after recording why not."""
        try:
            return NodeType(str(value).lower())
        except ValueError:
            v.add(field, f"must be one of {'|'.join(NodeType)}, got {quoted(value)}")
            return None


@dataclass(frozen=True, slots=True)
class Node:
    """A location that holds stock and may ship it or offer pickup.

    Costs are currency amounts; ``processing_hours`` is the time from order creation until
    the node can hand a parcel to the carrier; parcels ready after ``cutoff_local_time`` (in
    the node's ``timezone``) leave the next day. ``daily_order_capacity`` ``None`` is
    unlimited. A higher ``priority`` (−1000 to 1000) wins ties between plans of equal cost
    (docs/cost-model.md) and pays less ``priority_bonus`` penalty (docs/rules.md).
    """

    node_id: str
    type: NodeType
    latitude: float
    longitude: float
    country: str
    timezone: str
    handling_cost_per_shipment: float
    handling_cost_per_unit: float
    processing_hours: float
    cutoff_local_time: time
    daily_order_capacity: int | None
    priority: int = 0
    ships: bool = True
    pickup: bool = False
    tags: frozenset[str] = frozenset()

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations) -> Node | None:
        """Validate one ``nodes.csv`` row (or equivalent mapping); ``None`` after violations."""
        before = len(v.items)
        node_id = f.text(raw, "node_id", v)
        type_text = f.text(raw, "type", v)
        node_type = None if type_text is None else NodeType.parse(type_text, "type", v)
        latitude = f.number(raw, "latitude", v, minimum=-90, maximum=90)
        longitude = f.number(raw, "longitude", v, minimum=-180, maximum=180)
        country = f.text(raw, "country", v)
        timezone = f.text(raw, "timezone", v)
        if timezone is not None:
            try:
                ZoneInfo(timezone)
            except (ZoneInfoNotFoundError, ValueError):
                v.add("timezone", f"must be an IANA time zone, got {quoted(timezone)}")
        per_shipment = f.money(raw, "handling_cost_per_shipment", v)
        per_unit = f.money(raw, "handling_cost_per_unit", v)
        processing = f.number(raw, "processing_hours", v, minimum=0, maximum=f.MAX_HOURS)
        cutoff = f.local_time(raw, "cutoff_local_time", v)
        capacity = f.integer(raw, "daily_order_capacity", v, required=False, minimum=0)
        priority = f.integer(
            raw, "priority", v, required=False, minimum=-MAX_PRIORITY, maximum=MAX_PRIORITY
        )
        ships = f.boolean(raw, "ships", v, default=True)
        pickup = f.boolean(raw, "pickup", v, default=False)
        if len(v.items) > before:
            return None
        assert node_id and node_type and country and timezone and cutoff is not None
        assert latitude is not None and longitude is not None and per_shipment is not None
        assert per_unit is not None and processing is not None
        return Node(
            node_id=node_id,
            type=node_type,
            latitude=latitude,
            longitude=longitude,
            country=country.upper(),
            timezone=timezone,
            handling_cost_per_shipment=per_shipment,
            handling_cost_per_unit=per_unit,
            processing_hours=processing,
            cutoff_local_time=cutoff,
            daily_order_capacity=capacity,
            priority=priority or 0,
            ships=bool(ships),
            pickup=bool(pickup),
            tags=f.tags(raw, "tags"),
        )


@dataclass(frozen=True, slots=True)
class Sku:
    """A stock-keeping unit: what it weighs and what it is."""

    sku: str
    weight_kg: float
    hazmat: bool = False
    tags: frozenset[str] = frozenset()

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations) -> Sku | None:
        """Validate one ``skus.csv`` row; ``None`` after violations."""
        before = len(v.items)
        sku = f.text(raw, "sku", v)
        weight = f.number(raw, "weight_kg", v, minimum=0, maximum=f.MAX_WEIGHT_KG)
        hazmat = f.boolean(raw, "hazmat", v, default=False)
        if len(v.items) > before:
            return None
        assert sku is not None and weight is not None
        return Sku(sku=sku, weight_kg=weight, hazmat=bool(hazmat), tags=f.tags(raw, "tags"))

    @property
    def attributes(self) -> frozenset[str]:
        """What rules can match: the tags, and ``hazmat`` when the SKU is hazardous."""
        return self.tags | {"hazmat"} if self.hazmat else self.tags


@dataclass(frozen=True, slots=True)
class StockPosition:
    """Units of one SKU at one node.

    ``available`` is what routing may promise: on hand − reserved − safety stock, never
    below zero.
    """

    node_id: str
    sku: str
    on_hand: int
    safety_stock: int = 0
    reserved: int = 0

    @property
    def available(self) -> int:
        """Units that may be promised to a new order."""
        return max(0, self.on_hand - self.reserved - self.safety_stock)

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations) -> StockPosition | None:
        """Validate one ``stock.csv`` row; ``None`` after violations."""
        before = len(v.items)
        node_id = f.text(raw, "node_id", v)
        sku = f.text(raw, "sku", v)
        on_hand = f.integer(raw, "on_hand", v, minimum=0)
        safety = f.integer(raw, "safety_stock", v, required=False, minimum=0)
        reserved = f.integer(raw, "reserved", v, required=False, minimum=0)
        if len(v.items) > before:
            return None
        assert node_id is not None and sku is not None and on_hand is not None
        return StockPosition(node_id, sku, on_hand, safety or 0, reserved or 0)


@dataclass(frozen=True, slots=True)
class RateBand:
    """One row of a carrier rate card: a service level priced up to a distance."""

    service: str
    max_distance_km: float
    base_cost: float
    cost_per_kg: float
    transit_days: int

    @staticmethod
    def from_raw(raw: f.Raw, v: Violations) -> RateBand | None:
        """Validate one ``rates.csv`` row; ``None`` after violations."""
        before = len(v.items)
        service = f.text(raw, "service", v)
        max_km = f.number(raw, "max_distance_km", v, strictly_positive=True, maximum=40_075)
        base = f.money(raw, "base_cost", v)
        per_kg = f.money(raw, "cost_per_kg", v)
        transit = f.integer(raw, "transit_days", v, minimum=0, maximum=f.MAX_DAYS)
        if len(v.items) > before:
            return None
        assert service is not None and max_km is not None and base is not None
        assert per_kg is not None and transit is not None
        return RateBand(service, max_km, base, per_kg, transit)


@dataclass(frozen=True, slots=True)
class RateCard:
    """Rate bands grouped by service, each service's bands sorted by distance."""

    bands: Mapping[str, tuple[RateBand, ...]]

    @staticmethod
    def of(bands: Iterable[RateBand]) -> RateCard:
        """Group and sort bands by service and distance."""
        grouped: dict[str, list[RateBand]] = {}
        for band in bands:
            grouped.setdefault(band.service, []).append(band)
        return RateCard(
            {s: tuple(sorted(b, key=lambda r: r.max_distance_km)) for s, b in grouped.items()}
        )

    @property
    def services(self) -> tuple[str, ...]:
        """The service levels this card prices, sorted."""
        return tuple(sorted(self.bands))


@dataclass(frozen=True, slots=True)
class Network:
    """Nodes, catalogue, rate card and calendars: everything about the network but live stock.

    ``calendars`` holds the nodes' non-shipping days and the services' non-delivery days
    (docs/calendars.md); a node or service without a calendar is open every day.
    """

    nodes: tuple[Node, ...]
    skus: Mapping[str, Sku]
    rates: RateCard
    calendars: Calendars = field(default_factory=Calendars)
    node_index: Mapping[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "node_index", {n.node_id: i for i, n in enumerate(self.nodes)})

    def node(self, node_id: str) -> Node | None:
        """The node with this id, if there is one."""
        i = self.node_index.get(node_id)
        return None if i is None else self.nodes[i]

    def unknown_owner(self, kind: CalendarKind, owner: str) -> str:
        """Why ``owner`` cannot have a calendar of ``kind`` here ("" when it can).

        A node calendar needs a node of the network, a service calendar a service of the
        rate card.
        """
        if kind is CalendarKind.NODE:
            return "" if owner in self.node_index else f"unknown node {quoted(owner)}"
        if owner in self.rates.bands:
            return ""
        return f"unknown service {quoted(owner)} (services: {', '.join(self.rates.services)})"


K = TypeVar("K")
V = TypeVar("V")


class Overlay(Mapping[K, V]):
    """A read-only mapping: ``base`` with ``top`` laid over it; neither is ever changed.

    Iterates in the order ``{**base, **top}`` would: the base's keys (a key in both keeps its
    base place), then the new keys of the top in the order they were added.
    :meth:`over` flattens it into a plain dict once the top holds more than
    :data:`OVERLAY_FLATTEN_AT` keys, so lookups never go more than two deep and a long chain
    of small changes costs, amortised, a few entries each. Pickles as a plain dict.
    """

    __slots__ = ("_base", "_len", "_top")

    def __init__(self, base: Mapping[K, V], top: Mapping[K, V], length: int = -1) -> None:
        self._base = base
        self._top = top
        self._len = length if length >= 0 else len(base) + sum(k not in base for k in top)

    @staticmethod
    def over(mapping: Mapping[K, V], changes: Mapping[K, V]) -> Mapping[K, V]:
        """``mapping`` with ``changes`` laid over it (an Overlay, or a dict when flattened)."""
        length = len(mapping) + sum(key not in mapping for key in changes)
        if isinstance(mapping, Overlay):
            base, top = mapping._base, {**mapping._top, **changes}
        else:
            base, top = mapping, dict(changes)
        if len(top) > OVERLAY_FLATTEN_AT:
            return {**base, **top}
        return Overlay(base, top, length)

    def __getitem__(self, key: K) -> V:
        if key in self._top:
            return self._top[key]
        return self._base[key]

    def __contains__(self, key: object) -> bool:
        return key in self._top or key in self._base

    def __iter__(self) -> Iterator[K]:
        yield from self._base
        yield from (key for key in self._top if key not in self._base)

    def __len__(self) -> int:
        return self._len

    def __reduce__(self) -> tuple[type[dict[K, V]], tuple[dict[K, V]]]:
        return dict, (dict(self.items()),)


class _Grouped(Mapping[tuple[str, str], StockPosition]):
    """Positions grouped by SKU, as a read-only mapping by (node_id, sku).

    The flat dict is built on the first lookup only: planning reads stock by SKU
    (``Stock.by_sku``) and never needs it. Pickles as a plain dict.
    """

    __slots__ = ("_flat", "_groups")

    def __init__(self, groups: Mapping[str, tuple[StockPosition, ...]]) -> None:
        self._groups = groups
        self._flat: dict[tuple[str, str], StockPosition] | None = None

    def _dict(self) -> dict[tuple[str, str], StockPosition]:
        if self._flat is None:  # built twice at worst, by two threads, to equal dicts
            self._flat = {(p.node_id, p.sku): p for g in self._groups.values() for p in g}
        return self._flat

    def __getitem__(self, key: tuple[str, str]) -> StockPosition:
        return self._dict()[key]

    def __contains__(self, key: object) -> bool:
        return key in self._dict()

    def __iter__(self) -> Iterator[tuple[str, str]]:
        return iter(self._dict())

    def __len__(self) -> int:
        return sum(len(g) for g in self._groups.values())

    def __reduce__(self) -> tuple[type[dict[tuple[str, str], StockPosition]], tuple[object]]:
        return dict, (dict(self._dict()),)


OVERLAY_FLATTEN_AT = 1024
"""Keys an :class:`Overlay` may lay over its base before :meth:`Overlay.over` flattens it."""


@dataclass(frozen=True, slots=True)
class Stock:
    """A read-only view of stock positions keyed by (node_id, sku).

    ``by_sku`` lists, for each SKU, the positions that hold it, so candidate generation
    touches only the nodes that carry an order's SKUs.
    """

    positions: Mapping[tuple[str, str], StockPosition]
    by_sku: Mapping[str, tuple[StockPosition, ...]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        grouped: dict[str, list[StockPosition]] = {}
        for pos in self.positions.values():
            grouped.setdefault(pos.sku, []).append(pos)
        object.__setattr__(self, "by_sku", {s: tuple(p) for s, p in grouped.items()})

    @staticmethod
    def of(positions: Iterable[StockPosition]) -> Stock:
        """Index positions by (node_id, sku)."""
        return Stock({(p.node_id, p.sku): p for p in positions})

    @staticmethod
    def from_rows(rows: Sequence[object], v: Violations, network: Network) -> Stock | None:
        """Validate positions given as mappings (a request's or a file's), ``[i]``-pathed.

        Every row must be a valid position of a node and SKU of ``network``, and no
        (node, SKU) pair may come twice. ``None`` after any violation.
        """
        before = len(v.items)
        positions: list[StockPosition] = []
        seen: set[tuple[str, str]] = set()
        for i, row in enumerate(rows):
            sub = Violations(v.path(f"[{i}]"))
            if not isinstance(row, Mapping):
                sub.add("", "must be a mapping {node_id, sku, on_hand, safety_stock, reserved}")
                v.extend(sub.items)
                continue
            raw = {str(k): x for k, x in row.items()}
            position = StockPosition.from_raw(raw, sub)
            node_id = f.text(raw, "node_id", Violations())
            sku = f.text(raw, "sku", Violations())
            if node_id is not None and network.node(node_id) is None:
                sub.add("node_id", f"unknown node {quoted(node_id)}")
            if sku is not None and sku not in network.skus:
                sub.add("sku", f"unknown sku {quoted(sku)}")
            if node_id is not None and sku is not None:
                if (node_id, sku) in seen:
                    sub.add("", f"duplicates an earlier position {node_id}/{sku}")
                seen.add((node_id, sku))
            v.extend(sub.items)
            if position is not None and not sub:
                positions.append(position)
        return None if len(v.items) > before else Stock.of(positions)

    @staticmethod
    def of_groups(groups: Mapping[str, tuple[StockPosition, ...]]) -> Stock:
        """The stock of positions given already grouped by SKU (each of its own SKU).

        Equal to ``Stock.of`` of them all, but each SKU keeps its very tuple, so whatever
        was computed for that tuple before (the engine's per-SKU arrays) is found again.
        """
        return Stock._indexed(_Grouped(groups), dict(groups))

    def replaced(self, positions: Iterable[StockPosition]) -> Stock:
        """The stock with ``positions`` put in place of those with the same (node, SKU).

        Equal to ``Stock.of`` of the merged positions (new ones come last in their SKU's
        group), but nothing is copied whole: the result's two mappings are this stock's
        with the changes laid over them (:class:`Overlay`), and every SKU not touched keeps
        its very tuple of positions. A small change to a large stock costs the size of the
        change; a replay makes one per order.
        """
        changed: dict[tuple[str, str], StockPosition] = {}
        for position in positions:
            changed[(position.node_id, position.sku)] = position
        merged = Overlay.over(self.positions, changed)
        grouped: dict[str, list[StockPosition]] = {}
        for key, position in changed.items():
            if key not in self.positions:
                grouped.setdefault(position.sku, []).append(position)
        at_node: dict[str, dict[str, StockPosition]] = {}
        for (node_id, sku), position in changed.items():
            at_node.setdefault(sku, {})[node_id] = position
        regrouped = {
            sku: tuple([now.get(p.node_id, p) for p in self.by_sku.get(sku, ())])
            + tuple(grouped.get(sku, ()))
            for sku, now in at_node.items()
        }
        return Stock._indexed(merged, Overlay.over(self.by_sku, regrouped))

    @staticmethod
    def _indexed(
        positions: Mapping[tuple[str, str], StockPosition],
        by_sku: Mapping[str, tuple[StockPosition, ...]],
    ) -> Stock:
        """A stock built without ``__post_init__``, its by-SKU index given: the one place.

        ``by_sku`` must group ``positions`` as ``__post_init__`` would. Every field of the
        dataclass is set by name from the values given here, so a field added to Stock and
        not given here fails loudly (``KeyError``) instead of being silently left unset.
        """
        values: dict[str, object] = {"positions": positions, "by_sku": by_sku}
        out = object.__new__(Stock)  # frozen: fields are set through object.__setattr__
        for name in (field_.name for field_ in fields(Stock)):
            object.__setattr__(out, name, values.pop(name))
        if values:
            raise TypeError(f"Stock has no field(s) {', '.join(sorted(values))}")
        return out

    def available(self, node_id: str, sku: str) -> int:
        """Available units of ``sku`` at ``node_id`` (0 when the node has no position)."""
        pos = self.positions.get((node_id, sku))
        return 0 if pos is None else pos.available
