"""The outline of the contiguous United States, from data that ships in a package.

The what-if map draws its nodes and customers over the contiguous US; this is the country
shape under them, with no download. The ``zipcodes`` package (a runtime dependency)
carries the coordinates of every US postal code; the concave hull (shapely's
``concave_hull``) of those in the 48 contiguous states and DC is the outline. It is the
shape of where postal codes are, so it follows coasts, the Great Lakes and the borders to
within a few tens of kilometres, not to the shoreline: enough to see where nodes and
customers lie.
"""

from __future__ import annotations

import functools

import numpy as np
import shapely
import zipcodes
from numpy.typing import NDArray

NOT_CONTIGUOUS = frozenset(
    {"AK", "HI", "PR", "VI", "GU", "AS", "MP", "FM", "MH", "PW", "AA", "AE", "AP"}
)
"""States, territories and military codes outside the contiguous US."""

HULL_RATIO = 0.03
"""shapely's ``concave_hull`` ratio: small enough to keep Florida and the Great Lakes'
notch, large enough that the sparse West is not carved between its postal codes."""


@functools.cache
def contiguous_us() -> NDArray[np.float64]:
    """The outline as (longitude, latitude) rows, closed (the first point repeated last)."""
    points = [
        (float(z["long"]), float(z["lat"]))
        for z in zipcodes.list_all()  # type: ignore[no-untyped-call]
        if z["active"] and z["state"] not in NOT_CONTIGUOUS and float(z["lat"]) > 0
    ]
    hull = shapely.concave_hull(shapely.MultiPoint(points), ratio=HULL_RATIO)
    return np.asarray(hull.exterior.coords, dtype=np.float64)
