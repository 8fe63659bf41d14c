"""Error messages quote a bounded prefix of a value, whatever its size or shape."""

from __future__ import annotations

import tracemalloc

from models.errors import QUOTE_LIMIT, IdempotencyMismatchError, clipped, quoted


def laughs(levels: int) -> list[object]:
    """Lists nested ``levels`` deep, nine times the same list at each level.

    It takes a few hundred bytes (the same list is shared), but its repr has ``9 ** levels``
    items: the value YAML aliases build in a "billion laughs" document.
    """
    value: list[object] = ["lol"] * 9
    for _ in range(levels - 1):
        value = [value] * 9
    return value


def test_short_text_is_its_repr() -> None:
    """Text of at most QUOTE_LIMIT characters is quoted whole, as its repr."""
    assert quoted("warehouse") == "'warehouse'"
    assert quoted("x" * QUOTE_LIMIT) == repr("x" * QUOTE_LIMIT)


def test_long_text_is_a_prefix_an_ellipsis_and_its_length() -> None:
    """Longer text shows its first QUOTE_LIMIT characters, an ellipsis and its full length."""
    assert quoted("x" * 5_000) == f"{'x' * QUOTE_LIMIT!r}… (5000 chars)"
    assert clipped("y" * 5_000) == f"{'y' * QUOTE_LIMIT}… (5000 chars)"
    assert clipped("short") == "short"


def test_a_nested_value_is_quoted_by_its_first_items_without_walking_it() -> None:
    """Nine levels of shared lists (387 million items) are quoted in under 100 KB of memory."""
    tracemalloc.start()
    try:
        shown = quoted(laughs(9))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 100_000
    assert shown.startswith("[[[[...], [...], [...], [...], ...]")
    assert len(shown) <= QUOTE_LIMIT + 1


def test_numbers_and_huge_integers_are_quoted_bounded() -> None:
    """Small numbers show whole; an integer too long to print is named, not raised on."""
    assert quoted(3) == "3" and quoted(2.5) == "2.5" and quoted(None) == "None"
    assert len(quoted(10**200)) <= QUOTE_LIMIT + 1
    assert quoted(10**5_000) == "<int too long to show>"


def test_a_reused_request_id_is_quoted_bounded() -> None:
    """The idempotency error quotes a 10 KB request_id by its first characters."""
    message = str(IdempotencyMismatchError("r" * 10_000))
    assert "… (10000 chars)" in message and len(message) < 200
