"""Great-circle distance, vectorised over many nodes at once.

The formula and the Earth radius are those of geopy's ``great_circle`` (the spherical
Vincenty formula, stable for both tiny and antipodal distances), so both agree to rounding.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

EARTH_RADIUS_KM = 6371.009
"""Mean Earth radius used by geopy's ``great_circle``."""


def great_circle_km(
    latitude: float, longitude: float, latitudes: ArrayLike, longitudes: ArrayLike
) -> NDArray[np.float64]:
    """Distances in km from one point to each of many points (degrees in, km out)."""
    lat1 = np.radians(latitude)
    lng1 = np.radians(longitude)
    lat2 = np.radians(np.asarray(latitudes, dtype=np.float64))
    lng2 = np.radians(np.asarray(longitudes, dtype=np.float64))
    sin_lat1, cos_lat1 = np.sin(lat1), np.cos(lat1)
    sin_lat2, cos_lat2 = np.sin(lat2), np.cos(lat2)
    delta = lng2 - lng1
    cos_delta, sin_delta = np.cos(delta), np.sin(delta)
    arc = np.arctan2(
        np.sqrt(
            (cos_lat2 * sin_delta) ** 2
            + (cos_lat1 * sin_lat2 - sin_lat1 * cos_lat2 * cos_delta) ** 2
        ),
        sin_lat1 * sin_lat2 + cos_lat1 * cos_lat2 * cos_delta,
    )
    return np.asarray(EARTH_RADIUS_KM * arc, dtype=np.float64)
