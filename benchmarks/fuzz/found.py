"""What a long run found: property failures counted by kind, the first of each kept."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field


@dataclass
class Found:
    """Failures seen while a run goes on past them, by summary (a kind, without the input)."""

    counts: Counter[str] = field(default_factory=Counter)
    first: dict[str, str] = field(default_factory=dict)

    def add(self, summary: str, message: str) -> None:
        """Count a failure of kind ``summary``; keep ``message`` when the kind is new."""
        self.counts[summary] += 1
        self.first.setdefault(summary, message)

    def lines(self) -> list[str]:
        """One line per kind, most frequent first, then the first message of each."""
        return [
            f"{count} x {summary}\n    first: {self.first[summary][:1500]}"
            for summary, count in self.counts.most_common()
        ]
