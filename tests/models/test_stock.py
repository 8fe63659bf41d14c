"""A stock changed by ``Stock.replaced`` is the stock made afresh of the merged positions.

``replaced`` lays changes over the stock it starts from (:class:`Overlay`) instead of
copying it; these tests hold that the result is, in every way a reader can see, the
``Stock.of`` of the merged positions: the same positions in the same order, the same
groups per SKU in the same order, lookups, lengths, equality and pickling, over chains of
changes long enough to be flattened several times.
"""

from __future__ import annotations

import pickle
import random

from models.network import OVERLAY_FLATTEN_AT, Overlay, Stock, StockPosition


def _positions(n_nodes: int, n_skus: int, rng: random.Random) -> list[StockPosition]:
    return [
        StockPosition(f"N{j:03d}", f"S{s:03d}", rng.randint(0, 9), rng.randint(0, 2))
        for j in range(n_nodes)
        for s in range(n_skus)
        if rng.random() < 0.6
    ]


def _assert_same(stock: Stock, reference: dict[tuple[str, str], StockPosition]) -> None:
    """``stock`` reads exactly as ``Stock.of`` of ``reference`` (a dict in merge order)."""
    fresh = Stock.of(reference.values())
    assert list(stock.positions.items()) == list(reference.items())
    assert len(stock.positions) == len(reference)
    assert {s: list(p) for s, p in stock.by_sku.items()} == {
        s: list(p) for s, p in fresh.by_sku.items()
    }
    assert list(stock.by_sku) == list(fresh.by_sku)
    assert stock == fresh


def test_a_long_chain_of_changes_reads_as_the_merged_positions() -> None:
    """About 4,000 changes (updates and new positions), one to four at a time, each step checked.

    The chain crosses the flatten threshold several times; the overlaid and the flattened
    forms are both compared with the reference along the way.
    """
    rng = random.Random(7)
    start = _positions(40, 30, rng)
    stock = Stock.of(start)
    reference = {(p.node_id, p.sku): p for p in start}
    flattened = 0
    changes = 0
    while changes < 4 * OVERLAY_FLATTEN_AT:
        batch = [
            StockPosition(
                f"N{rng.randrange(300):03d}", f"S{rng.randrange(33):03d}", rng.randint(0, 9)
            )
            for _ in range(rng.randint(1, 4))
        ]
        stock = stock.replaced(batch)
        for p in batch:
            reference[(p.node_id, p.sku)] = p
        changes += len(batch)
        flat = not isinstance(stock.positions, Overlay)
        flattened += flat
        if flat or changes % 10 < 4:  # every flattening, and about every fourth step
            _assert_same(stock, reference)
    _assert_same(stock, reference)
    assert flattened >= 2
    assert ("N999", "S000") not in stock.positions
    assert stock.positions.get(("N999", "S000")) is None
    assert stock.available("N999", "S000") == 0


def test_replaced_leaves_the_stock_it_started_from_unchanged() -> None:
    """The stock before a change still reads as before, however many changes follow."""
    rng = random.Random(3)
    start = _positions(10, 10, rng)
    before = Stock.of(start)
    after = before
    for i in range(50):
        after = after.replaced([StockPosition("N000", f"S{i % 12:03d}", 100 + i)])
    _assert_same(before, {(p.node_id, p.sku): p for p in start})
    assert after != before


def test_skus_not_touched_keep_their_very_tuple_of_positions() -> None:
    """What lets per-SKU arrays built for one stock serve the next (router/engine/arrays)."""
    stock = Stock.of(_positions(10, 5, random.Random(1)))
    after = stock.replaced([StockPosition("N000", "S000", 42)])
    for sku, held in stock.by_sku.items():
        assert (after.by_sku[sku] is held) == (sku != "S000")


def test_an_overlaid_stock_pickles_as_the_plain_stock_it_reads_as() -> None:
    """Process executors ship stocks between processes: the copy is a plain dict-backed one."""
    stock = Stock.of(_positions(10, 5, random.Random(2)))
    after = stock.replaced([StockPosition("N001", "S001", 5), StockPosition("N999", "S001", 1)])
    assert isinstance(after.positions, Overlay)
    copy = pickle.loads(pickle.dumps(after))
    assert type(copy.positions) is dict
    assert copy == after
    assert list(copy.positions.items()) == list(after.positions.items())
    assert {s: list(p) for s, p in copy.by_sku.items()} == {
        s: list(p) for s, p in after.by_sku.items()
    }


def test_stock_of_groups_equals_stock_of_and_keeps_each_skus_tuple():
    """Stock.of_groups is Stock.of of the same positions, each SKU's tuple kept as given.

    Its positions mapping (built only when looked up) answers like a dict, and the stock
    pickles to an equal one; replacing a position works on it as on any stock.
    """
    groups = {
        "A": (StockPosition("n1", "A", 5), StockPosition("n2", "A", 3, 1, 1)),
        "B": (StockPosition("n1", "B", 1),),
    }
    grouped = Stock.of_groups(groups)
    plain = Stock.of(p for group in groups.values() for p in group)
    assert grouped == plain and plain == grouped
    assert grouped.by_sku["A"] is groups["A"] and grouped.by_sku["B"] is groups["B"]
    assert len(grouped.positions) == 3
    assert ("n2", "A") in grouped.positions and ("n2", "B") not in grouped.positions
    assert grouped.available("n2", "A") == 1
    assert dict(grouped.positions) == dict(plain.positions)
    assert pickle.loads(pickle.dumps(grouped)) == plain
    moved = grouped.replaced([StockPosition("n1", "B", 0)])
    assert moved == plain.replaced([StockPosition("n1", "B", 0)])
