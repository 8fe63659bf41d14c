"""The grouped problem: the greedy fill, reductions and their maps back, bitsets."""

from __future__ import annotations

from datetime import date

import numpy as np

from models.plan import CandidateTerms, ExplainedModel, LineTerms
from router.engine.problem import Problem, bitsets, drop_dominated
from router.engine.terms import BuiltModel

DAY = date(2026, 11, 20)


def candidate(node_id: str, shipment: int, unit: int, available: int) -> CandidateTerms:
    return CandidateTerms(
        node_id, 0.0, "ground", DAY, DAY, 0, shipment, 0, 0, 0, (unit,), (available,)
    )


def problem(*candidates: CandidateTerms, quantity: int = 3, partial: bool = False) -> Problem:
    model = ExplainedModel(
        0, 0, candidates, (LineTerms("l", "A", quantity, 0, partial),), None, False
    )
    found = Problem.of(BuiltModel.of(model))
    assert found is not None
    return found


def test_a_restricted_problem_fills_cheapest_units_first_whatever_the_ranks():
    """Ranks survive a reduction, and may exceed the reduced problem's size.

    n0 holds 3 at 1 a unit, n4 holds 1 at 0. Restricted to the two, {n0, n4} fills 3
    units as n4's 1 (0) then n0's 2 (2): cost 2, both ship. (A fill key built on the
    reduced size once put n0 first, leaving n4 idle.)
    """
    full = problem(
        candidate("n0", 0, 1, 3),
        candidate("n1", 0, 0, 0),
        candidate("n2", 0, 0, 0),
        candidate("n3", 0, 0, 0),
        candidate("n4", 0, 0, 1),
    )
    sub = full.restrict(np.array([0, 4]))
    evaluated = sub.problem.evaluate(np.array([[1, 0]]))
    assert evaluated.valid.tolist() == [True]
    assert evaluated.cost.tolist() == [2]
    assert evaluated.take[0, :, 0].tolist() == [1, 2]
    assert sub.lift(np.array([[1, 0]])).tolist() == [[4, 0]]


def test_a_node_goes_only_when_enough_others_dominate_it():
    """A node goes when at least ``wanted`` nodes cover its groups more cheaply.

    d1 and d2 (F 1, unit 1, 5 units) both dominate j (F 2, unit 2, 2 units), and d1 also
    dominates d2 (equal costs, d1 first in the tie order). One plan wanted: j (two
    dominators) and d2 (one) go. Two: j goes, d2 stays. Three: every node stays.
    """
    p = problem(
        candidate("d1", 1, 1, 5),
        candidate("d2", 1, 1, 5),
        candidate("j", 2, 2, 2),
    )
    assert drop_dominated(p, 1).rows.tolist() == [0]
    assert drop_dominated(p, 2).rows.tolist() == [0, 1]
    assert drop_dominated(p, 3).rows.tolist() == [0, 1, 2]


def test_bitsets_put_group_g_at_bit_g_of_word_g_over_64():
    """Row j's bit g % 64 of word g // 64 is set exactly when flags[j, g]."""
    flags = np.zeros((2, 130), dtype=np.bool_)
    flags[0, [0, 63, 64, 129]] = True
    flags[1, 5] = True
    bits = bitsets(flags)
    assert bits.shape == (2, 3)
    assert bits[0].tolist() == [1 | (1 << 63), 1, 2]
    assert bits[1].tolist() == [1 << 5, 0, 0]
