"""The published multi-item fulfillment benchmark: configurations, instances, arrivals.

This is the generator of Jasin & Sinha (2015) as published in the code of Ma (2023) and
Amil, Makhdoumi & Wei (2025), on their data files (``data/``, see ``data/SOURCE.md``):

- distance: haversine (Earth radius 6,371 km) from centre k to city j, divided by 1.61
  (miles);
- cost: 8.759 per box (each distinct centre an order ships from) plus, per item,
  0.423 + 0.000541 × miles. An item that is not served goes to the dummy centre K (the
  last row of the cost arrays): twice the box cost and twice the per-item cost of the
  farthest centre from that city;
- order types: the empty order, then for each size s = 1..nmax ``nper`` random item
  subsets of size s; the empty order's and each size's weight are uniform random numbers,
  normalised, and each size's weight is split over its subsets by uniform random weights.
  Type q arrives at city j with probability p_q × population_j / total population; one
  arrival per period, empty orders skipped;
- stock: centre k carries item i with probability p_carry (independently); d[k, i] is the
  demand for item i of the cities whose closest carrying centre is k, and
  b[k, i] = round(T·d + z·sqrt(T·d·(1 − d))) with z = 0.5 (round half to even, as Julia's
  ``round``).

The random streams are numpy's, not Julia's: instances are drawn from the same
distribution, not the same numbers, so results match the papers within their noise.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

DATA = Path(__file__).parent / "data"

BOX_COST = 8.759
ITEM_COST = 0.423
ITEM_COST_PER_MILE = 0.000541
KM_PER_MILE = 1.61
EARTH_RADIUS_KM = 6371.0
"""Julia ``Distances.Haversine()``'s default radius, which the published code uses."""


@dataclass(frozen=True, slots=True)
class Config:
    """One configuration of the benchmark."""

    name: str
    centres_file: str
    cities_file: str
    items: int
    nmax: int
    nper: int
    periods: int
    p_carry: float
    z_safety: float = 0.5


CONFIGS: dict[str, Config] = {
    "small": Config(
        "small", "fulfillment_centers_warmup.csv", "cities_warmup.csv", 20, 5, 5, 10_000, 0.75
    ),
    "large": Config("large", "fulfillment_centers.csv", "cities.csv", 100, 10, 10, 100_000, 0.5),
    "large-sparse": Config(
        "large-sparse", "fulfillment_centers.csv", "cities.csv", 100, 10, 10, 100_000, 0.25
    ),
}
"""The papers' configurations: small (5 centres, 10 cities, 20 items) and large (10
centres, 99 cities, 100 items) with p_carry 0.5 or 0.25 (``large-sparse``)."""


@dataclass(frozen=True, slots=True)
class Geography:
    """Centres and cities of a configuration, with the box and item cost of each pair.

    ``box`` and ``item`` have K + 1 rows: the last is the dummy centre (unserved items).
    ``centre_points`` and ``city_points`` are (latitude, longitude) rows in degrees.
    """

    centres: tuple[str, ...]
    cities: tuple[str, ...]
    centre_points: NDArray[np.float64]  # (K, 2)
    city_points: NDArray[np.float64]  # (J, 2)
    population: NDArray[np.float64]
    miles: NDArray[np.float64]  # (K, J)
    box: NDArray[np.float64]  # (K + 1, J)
    item: NDArray[np.float64]  # (K + 1, J)

    @property
    def dummy(self) -> int:
        """Row of the dummy centre."""
        return len(self.centres)


@dataclass(frozen=True, slots=True)
class Instance:
    """One random instance: order types, arrival probabilities, stock.

    ``types[q]`` are the items of type q (type 0 is the empty order); ``rate[q, j]`` the
    probability that a period's arrival is type q at city j; ``closest[i, j]`` the closest
    centre carrying item i from city j (the dummy row when none does); ``stock[k, i]``
    the starting stock.
    """

    config: Config
    geography: Geography
    types: tuple[tuple[int, ...], ...]
    rate: NDArray[np.float64]  # (Q, J)
    closest: NDArray[np.int64]  # (I, J)
    stock: NDArray[np.int64]  # (K, I)

    @property
    def periods(self) -> int:
        """Arrivals per sequence (T)."""
        return self.config.periods


def _rows(name: str) -> list[list[str]]:
    with (DATA / name).open(newline="") as f:
        return [row for row in csv.reader(f) if row]


def _haversine_km(
    lat1: NDArray[np.float64],
    lon1: NDArray[np.float64],
    lat2: NDArray[np.float64],
    lon2: NDArray[np.float64],
) -> NDArray[np.float64]:
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dlat, dlon = p2 - p1, np.radians(lon2) - np.radians(lon1)
    a = np.sin(dlat / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlon / 2) ** 2
    return np.asarray(2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a)), dtype=np.float64)


@cache
def geography(config: Config) -> Geography:
    """The centres, cities and costs of ``config`` (read from ``data/``)."""
    centres = _rows(config.centres_file)
    cities = _rows(config.cities_file)
    centre_points = np.array([[float(r[2]), float(r[3])] for r in centres])
    city_points = np.array([[float(r[2]), float(r[3])] for r in cities])
    miles = (
        _haversine_km(
            centre_points[:, :1], centre_points[:, 1:], city_points[:, 0], city_points[:, 1]
        )
        / KM_PER_MILE
    )
    item = ITEM_COST + ITEM_COST_PER_MILE * miles
    box = np.full(miles.shape, BOX_COST)
    return Geography(
        centres=tuple(r[0] for r in centres),
        cities=tuple(r[0] for r in cities),
        centre_points=centre_points,
        city_points=city_points,
        population=np.array([float(r[4]) for r in cities]),
        miles=miles,
        box=np.vstack([box, np.full((1, miles.shape[1]), 2 * BOX_COST)]),
        item=np.vstack([item, 2 * item.max(axis=0, keepdims=True)]),
    )


def generate(config: Config, rng: np.random.Generator) -> Instance:
    """A random instance of ``config`` (the published generator, see the module doc)."""
    geo = geography(config)
    n_centres, n_cities = geo.miles.shape
    types: list[tuple[int, ...]] = [()]
    for size in range(1, config.nmax + 1):
        for _ in range(config.nper):
            types.append(tuple(int(i) for i in rng.permutation(config.items)[:size]))
    empty_weight = rng.random()
    size_weight = rng.random(config.nmax)
    total = empty_weight + size_weight.sum()
    type_prob = [empty_weight / total]
    for size in range(config.nmax):
        subset = rng.random(config.nper)
        type_prob.extend(size_weight[size] / total * subset / subset.sum())
    rate = np.outer(type_prob, geo.population / geo.population.sum())

    closest = np.full((config.items, n_cities), n_centres, dtype=np.int64)
    demand = np.zeros((n_centres, config.items))
    item_rate = np.zeros((config.items, n_cities))
    for q, items in enumerate(types):
        item_rate[list(items)] += rate[q]
    for i in range(config.items):
        carries = np.asarray(rng.random(n_centres)) < config.p_carry
        if carries.any():
            miles = np.where(carries[:, None], geo.miles, np.inf)
            closest[i] = miles.argmin(axis=0)
            np.add.at(demand[:, i], closest[i], item_rate[i])
    t = config.periods
    stock = np.rint(t * demand + config.z_safety * np.sqrt(t * demand * (1 - demand)))
    return Instance(config, geo, tuple(types), rate, closest, stock.astype(np.int64))


def arrivals(instance: Instance, rng: np.random.Generator) -> NDArray[np.int64]:
    """One arrival sequence: T draws of (type, city) as rows ``[q, j]``, empty orders kept.

    Empty orders take a period and ship nothing (the policies skip them), as published.
    """
    rate = instance.rate
    flat = rng.choice(rate.size, size=instance.periods, p=rate.ravel() / rate.sum())
    return np.stack(np.unravel_index(flat, rate.shape), axis=1).astype(np.int64)
