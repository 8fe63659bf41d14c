"""Done when: every ledger logs decisions with their changes, lists and prunes the log.

A decision is logged exactly when its change commits; the log lists by each filter page by
page, and is pruned by age and by count. The same history on memory, SQLite and
PostgreSQL; each backend's pages are checked against the filter applied to every record
in Python (:meth:`DecisionQuery.matches`).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from models.decision import (
    DecisionKind,
    DecisionQuery,
    DecisionRecord,
    DecisionRetention,
)
from models.errors import NotFoundError, StockConflictError
from models.reservation import ReservationLine
from router.ledger import open_ledger
from tests.ledger.conftest import scenario

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)
ROOMY = scenario([("N1", "A", 100, 0), ("N2", "A", 3, 0)], {"N1": None, "N2": None})
CALENDARS = ("c" * 32, b"calendars-body")


def record(i: int, **fields: object) -> DecisionRecord:
    """The i-th decision of a history: a minute apart, kinds, statuses and nodes varied."""
    made = DecisionRecord(
        decision_id=f"D-{i:03d}",
        kind=(DecisionKind.ROUTE, DecisionKind.PLAN, DecisionKind.REROUTE)[i % 3],
        order_id=f"order-{i % 4}",
        decided_at=NOW + timedelta(minutes=i // 2),  # pairs share an instant: ids break ties
        status=("OPTIMAL", "INFEASIBLE")[i % 5 == 0],
        body=b"body-%d" % i,
        request_id=f"req-{i}",
        reservation_id=f"R-{i % 6}" if i % 3 != 1 else "",
        parent_id=f"D-{i - 1:03d}" if i % 3 == 2 else "",
        owner=("oms-a", "oms-b", "")[i % 3],
        node_ids=(("N1",), ("N2", "N1"), ())[i % 3],
        calendars=CALENDARS if i % 2 else None,
    )
    return replace(made, **fields)  # type: ignore[arg-type]


QUERIES = [
    DecisionQuery(),
    DecisionQuery(order_id="order-1"),
    DecisionQuery(reservation_id="R-2"),
    DecisionQuery(node_id="N2"),
    DecisionQuery(status="INFEASIBLE"),
    DecisionQuery(kind=DecisionKind.REROUTE),
    DecisionQuery(decided_from=NOW + timedelta(minutes=3)),
    DecisionQuery(decided_before=NOW + timedelta(minutes=5), node_id="N1"),
    DecisionQuery(owner="oms-a"),
    DecisionQuery(owner=""),
    DecisionQuery(order_id="no-such-order"),
]


@pytest.mark.parametrize("page_size", [1, 3, 100])
def test_pages_list_exactly_what_the_filter_selects_newest_first(backend_url: str, page_size: int):
    """Following next pages yields each selected decision once, by (decided_at, id) desc."""
    with open_ledger(backend_url) as ledger:
        made = [record(i) for i in range(20)]
        for r in made:
            ledger.record_decision(r)
        for query in QUERIES:
            expected = sorted(
                (r for r in made if query.matches(r)),
                key=lambda r: (r.decided_at, r.decision_id),
                reverse=True,
            )
            seen: list[DecisionRecord] = []
            after = None
            for _ in range(100):
                page = ledger.decisions(replace(query, page_size=page_size, after=after))
                assert len(page.decisions) <= page_size
                seen += page.decisions
                after = page.after
                if after is None:
                    break
            assert seen == [replace(r, calendars=None) for r in expected], query


def test_a_decision_reads_back_with_its_calendars(backend_url: str):
    """GetDecision's read: every column and the body as written, calendars by digest."""
    with open_ledger(backend_url) as ledger:
        for i in (1, 3):  # both keep the same calendars: stored once, read by each
            ledger.record_decision(record(i))
        assert ledger.decision("D-003") == record(3)
        assert ledger.decision("D-001").calendars == CALENDARS
        with pytest.raises(NotFoundError, match="decision_id"):
            ledger.decision("D-999")


def test_a_reservation_logs_its_decision_once_and_a_conflict_logs_none(backend_url: str):
    """A reservation's decision commits with it; a replay and a refused reserve log nothing."""
    with open_ledger(backend_url) as ledger:
        ledger.load(*ROOMY)

        def reserve(request_id: str, units: int, decision_id: str) -> str:
            made = ledger.reserve(
                request_id,
                b"p-" + request_id.encode(),
                "order-1",
                [ReservationLine("N2", "A", units)],
                [],
                60.0,
                NOW,
                decision=lambda r: record(
                    0, decision_id=decision_id, reservation_id=r.reservation_id
                ),
            )
            return made.reservation_id

        held = reserve("r1", 2, "D-first")
        assert reserve("r1", 2, "D-again") == held  # a replay: the first call's reservation
        with pytest.raises(StockConflictError):
            reserve("r2", 2, "D-short")  # one unit left at N2
        logged = ledger.decisions(DecisionQuery()).decisions
        assert [(d.decision_id, d.reservation_id) for d in logged] == [("D-first", held)]


def test_a_stored_response_logs_its_decision_once(backend_url: str):
    """store_response (nothing to reserve) logs with the idempotency record, not on replay."""
    with open_ledger(backend_url) as ledger:
        for decision_id in ("D-first", "D-again"):
            ledger.store_response("r1", b"p", b"answer", NOW, record(0, decision_id=decision_id))
        assert [d.decision_id for d in ledger.decisions(DecisionQuery()).decisions] == ["D-first"]


@pytest.mark.parametrize(
    ("retention", "kept"),
    [
        (DecisionRetention(max_age_s=None, max_count=None), 20),
        (DecisionRetention(max_age_s=None, max_count=7), 7),
        (DecisionRetention(max_age_s=None, max_count=0), 0),
        # decided at NOW + i//2 minutes; pruned at NOW + 12 min with a 4-minute age: i >= 16
        (DecisionRetention(max_age_s=240.0, max_count=None), 4),
        (DecisionRetention(max_age_s=240.0, max_count=2), 2),
        (DecisionRetention(max_age_s=3600.0, max_count=11), 11),
    ],
)
def test_pruning_keeps_the_newest_within_age_and_count(
    backend_url: str, retention: DecisionRetention, kept: int
):
    """Pruning deletes the oldest beyond either bound, and calendars no decision uses."""
    with open_ledger(backend_url) as ledger:
        made = [record(i) for i in range(20)]
        for r in made:
            ledger.record_decision(r)
        pruned = ledger.prune_decisions(NOW + timedelta(minutes=12), retention)
        left = ledger.decisions(DecisionQuery(page_size=1000)).decisions
        newest = sorted(made, key=lambda r: (r.decided_at, r.decision_id))[len(made) - kept :]
        assert pruned == 20 - kept
        assert {d.decision_id for d in left} == {r.decision_id for r in newest}
        assert all(ledger.decision(r.decision_id) == r for r in newest)  # calendars too


def test_a_ledger_reopened_keeps_its_log(backend_url: str):
    """The log is durable: a new ledger object on the same database reads it back."""
    if backend_url.startswith("memory"):
        pytest.skip("the memory ledger lives as long as its object")
    with open_ledger(backend_url) as ledger:
        ledger.record_decision(record(3))
    with open_ledger(backend_url) as ledger:
        assert ledger.decision("D-003") == record(3)


def test_pruning_keeps_the_decisions_of_a_reservation_still_held(backend_url: str):
    """Whatever the bounds, a HELD reservation keeps its decisions; released, they go.

    A rejection of a held reservation re-routes the order its RouteOrder decision holds.
    """
    with open_ledger(backend_url) as ledger:
        ledger.load(*ROOMY)
        held = ledger.reserve(
            "r1",
            b"p",
            "order-1",
            [ReservationLine("N1", "A", 1)],
            [],
            3600.0,
            NOW,
            decision=lambda r: record(0, reservation_id=r.reservation_id),
        )
        ledger.record_decision(record(1))
        everything = DecisionRetention(max_age_s=None, max_count=0)
        assert ledger.prune_decisions(NOW, everything) == 1
        assert [d.decision_id for d in ledger.decisions(DecisionQuery()).decisions] == ["D-000"]
        ledger.release("rel", held.reservation_id, NOW)
        assert ledger.prune_decisions(NOW, everything) == 1
        assert ledger.decisions(DecisionQuery()).decisions == ()
