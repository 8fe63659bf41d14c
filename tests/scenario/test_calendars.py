"""calendars.csv: read into the network's calendars, written back equal, bad rows located."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.calendar import Calendar, CalendarKind, Calendars
from models.errors import InvalidArgumentError
from models.scenario import Scenario
from router.scenario import read_scenario, write_scenario

CALENDARS = """node_id,service,closed_day
ST-CHI,,SUN
ST-CHI,,2026-12-25
DC-EAST,,sat
DC-EAST,,SUN
,ground,SUN
,ground,2026-12-25
,ground,2027-01-01
"""


def violation_fields(directory: Path) -> list[str]:
    """The field paths of the violations reading ``directory`` raises (it must raise)."""
    with pytest.raises(InvalidArgumentError) as info:
        read_scenario(directory)
    return [v.field for v in info.value.violations]


def test_calendars_are_read_by_owner(tiny: Path) -> None:
    """Rows group into one calendar per node or service; weekdays in any case."""
    (tiny / "calendars.csv").write_text(CALENDARS)
    calendars = read_scenario(tiny).network.calendars
    christmas, new_year = date(2026, 12, 25), date(2027, 1, 1)
    assert calendars == Calendars(
        {
            "ST-CHI": Calendar(frozenset({6}), frozenset({christmas})),
            "DC-EAST": Calendar(frozenset({5, 6})),
        },
        {"ground": Calendar(frozenset({6}), frozenset({christmas, new_year}))},
    )


def test_no_calendars_file_means_open_every_day(tiny_scenario: Scenario) -> None:
    """Without calendars.csv no node and no service has a closed day."""
    assert tiny_scenario.network.calendars == Calendars()


def test_calendars_round_trip(tmp_path: Path, tiny: Path) -> None:
    """A scenario with calendars, written and read back, is equal; written twice, the same bytes."""
    (tiny / "calendars.csv").write_text(CALENDARS)
    scenario = read_scenario(tiny)
    write_scenario(scenario, tmp_path / "a")
    assert read_scenario(tmp_path / "a") == scenario
    write_scenario(read_scenario(tmp_path / "a"), tmp_path / "b")
    written = (tmp_path / "a" / "calendars.csv").read_text()
    assert written == (tmp_path / "b" / "calendars.csv").read_text()
    assert written.splitlines()[:3] == [
        "closed_day,node_id,service",
        "SAT,DC-EAST,",
        "SUN,DC-EAST,",
    ]


_CALENDAR = st.builds(
    Calendar,
    st.frozensets(st.integers(0, 6), max_size=6),
    st.frozensets(st.dates(date(1970, 1, 1), date(2999, 12, 31)), max_size=8),
)


@settings(max_examples=40, deadline=None)
@given(nodes=st.lists(_CALENDAR, min_size=3, max_size=3), ground=_CALENDAR)
def test_any_calendars_round_trip(
    tmp_path_factory: pytest.TempPathFactory,
    tiny_scenario: Scenario,
    nodes: list[Calendar],
    ground: Calendar,
) -> None:
    """Any calendars of the tiny network's nodes and its ground service read back equal."""
    owners = sorted(n.node_id for n in tiny_scenario.network.nodes)
    calendars = Calendars.of(
        [
            *((CalendarKind.NODE, n, c) for n, c in zip(owners, nodes, strict=True)),
            (CalendarKind.SERVICE, "ground", ground),
        ]
    )
    scenario = replace(tiny_scenario, network=replace(tiny_scenario.network, calendars=calendars))
    directory = tmp_path_factory.mktemp("calendars")
    write_scenario(scenario, directory)
    assert read_scenario(directory).network.calendars == calendars


@pytest.mark.parametrize(
    ("row", "field"),
    [
        ("ST-CHI,,Sunday", "calendars.csv:2:closed_day"),  # neither a weekday nor a date
        ("ST-CHI,,2026-02-30", "calendars.csv:2:closed_day"),
        ("ST-CHI,,", "calendars.csv:2:closed_day"),
        ("ST-CHI,ground,SUN", "calendars.csv:2:node_id"),  # both owners
        (",,SUN", "calendars.csv:2:node_id"),  # no owner
        ("ST-XXX,,SUN", "calendars.csv:2:node_id"),  # not in nodes.csv
        (",air,SUN", "calendars.csv:2:service"),  # not in rates.csv
    ],
)
def test_bad_calendar_rows_are_located(tiny: Path, row: str, field: str) -> None:
    """A bad row is reported once, as ``calendars.csv:line:column``."""
    (tiny / "calendars.csv").write_text(f"node_id,service,closed_day\n{row}\n")
    assert violation_fields(tiny) == [field]


def test_a_calendar_closing_every_weekday_is_refused(tiny: Path) -> None:
    """A node closed all seven weekdays would never ship: refused on its last row."""
    days = ["MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN"]
    rows = "".join(f"ST-CHI,,{d}\n" for d in days)
    (tiny / "calendars.csv").write_text(f"node_id,service,closed_day\n{rows}")
    assert violation_fields(tiny) == ["calendars.csv:8:closed_day"]


def test_a_repeated_closed_day_is_refused(tiny: Path) -> None:
    """The same closed day twice for one owner is a duplicate row, like any repeated key."""
    (tiny / "calendars.csv").write_text("node_id,service,closed_day\nST-CHI,,SUN\nST-CHI,,sun\n")
    assert violation_fields(tiny) == ["calendars.csv:3:closed_day"]
