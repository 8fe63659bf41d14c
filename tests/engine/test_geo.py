from __future__ import annotations

import numpy as np
from geopy.distance import great_circle
from hypothesis import given
from hypothesis import strategies as st

from router.engine.geo import great_circle_km

lat = st.floats(-90, 90, allow_nan=False)
lon = st.floats(-180, 180, allow_nan=False)


@given(lat, lon, st.lists(st.tuples(lat, lon), min_size=1, max_size=20))
def test_equals_geopy_great_circle(lat0: float, lon0: float, points: list[tuple[float, float]]):
    """The vectorised distance equals geopy's great_circle to 1e-9 relative (1e-9 km near 0)."""
    got = great_circle_km(lat0, lon0, [p[0] for p in points], [p[1] for p in points])
    want = np.array([great_circle((lat0, lon0), p).km for p in points])
    np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-9)


def test_known_distance():
    """New York to Los Angeles is about 3,936 km on the sphere."""
    (d,) = great_circle_km(40.7128, -74.0060, [34.0522], [-118.2437])
    assert 3930 < d < 3945
