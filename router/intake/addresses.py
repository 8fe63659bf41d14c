"""Coordinates for a ship-to address: as given, from a US postal code, or from a geocoder.

The router plans on great-circle distances, so every order needs the destination's latitude
and longitude. HTTP clients often know only the address; :func:`normalise_ship_to` fills the
coordinates in, in this order:

1. both ``latitude`` and ``longitude`` given: range-checked and taken as they are;
2. a US address with a postal code (``12345`` or ``12345-6789``): resolved offline from the
   ``zipcodes`` package (its data ships inside the package, nothing is fetched), which also
   fills an empty ``region`` with the state;
3. anything else: the configured geocoder (``router intake --geocoder nominatim``), or a
   violation when there is none.

Nothing here touches the network unless a geocoder is configured.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import zipcodes
from geopy import exc as geopy_exc
from geopy.geocoders import get_geocoder_for_service

from models import fields as f
from models.errors import RouterError, Violations

DEFAULT_USER_AGENT = "order-router-intake"
"""User agent sent to a geocoding service when none is configured (Nominatim requires one)."""

GEOCODE_TIMEOUT_S = 5.0
"""How long one geocoding request may take by default, in seconds."""

_US_POSTAL_CODE = re.compile(r"(\d{5})(?:-\d{4})?")
_POSTAL_CODE_KEYS = ("postal_code", "postalCode")


@dataclass(frozen=True, slots=True)
class GeocodedPoint:
    """A place found by a geocoder, in degrees."""

    latitude: float
    longitude: float


class GeocoderUnavailableError(RouterError):
    """The geocoding service failed or timed out; the address itself may be fine.

    Not bad input: a caller answers it as a temporary failure (HTTP 503), never as 400.
    """


class Geocoder(Protocol):
    """Finds the coordinates of a free-text address."""

    def geocode(self, query: str, *, timeout: float) -> GeocodedPoint | None:
        """The best match for ``query``, or ``None`` when there is none.

        Raises :class:`GeocoderUnavailableError` when the service cannot answer.
        """
        ...


class GeopyGeocoder:
    """A :class:`Geocoder` backed by one of geopy's geocoding services."""

    def __init__(self, service: Any) -> None:
        self.service = service

    def geocode(self, query: str, *, timeout: float) -> GeocodedPoint | None:
        """The service's first match for ``query``."""
        try:
            found = self.service.geocode(query, exactly_one=True, timeout=timeout)
        except geopy_exc.GeopyError as e:
            raise GeocoderUnavailableError(f"geocoder failed: {e}") from e
        if found is None:
            return None
        return GeocodedPoint(float(found.latitude), float(found.longitude))


def make_geocoder(name: str | None, user_agent: str | None) -> Geocoder | None:
    """The geopy geocoding service called ``name`` (e.g. ``"nominatim"``), or ``None``.

    No request is made here. ``user_agent`` identifies the caller to the service
    (:data:`DEFAULT_USER_AGENT` when ``None``). Raises :class:`ValueError` naming the
    service when geopy does not know it or it cannot be set up (e.g. it needs an API key).
    """
    if name is None:
        return None
    try:
        service_class = get_geocoder_for_service(name)
    except geopy_exc.GeocoderNotFound as e:
        raise ValueError(f"unknown geocoding service {name!r}") from e
    try:
        service = service_class(user_agent=user_agent or DEFAULT_USER_AGENT)
    except (geopy_exc.GeopyError, TypeError) as e:
        raise ValueError(f"cannot set up geocoding service {name!r}: {e}") from e
    return GeopyGeocoder(service)


@functools.lru_cache(maxsize=4096)
def us_postal_point(zip5: str) -> tuple[float, float, str] | None:
    """Latitude, longitude and state of a 5-digit US ZIP code, or ``None`` when unknown."""
    try:
        matches = zipcodes.matching(zip5)  # type: ignore[no-untyped-call]
    except (TypeError, ValueError):
        return None
    for match in matches:
        try:
            lat, lon = float(match["lat"]), float(match["long"])
        except (KeyError, TypeError, ValueError):
            continue
        if math.isfinite(lat) and math.isfinite(lon):
            return lat, lon, str(match.get("state") or "")
    return None


def normalise_ship_to(
    ship_to: Mapping[str, object],
    path: str,
    v: Violations,
    geocoder: Geocoder | None,
    *,
    timeout: float = GEOCODE_TIMEOUT_S,
) -> dict[str, object]:
    """The ship-to (proto JSON mapping) with ``latitude`` and ``longitude`` filled in.

    ``path`` is where the ship-to sits under ``v``'s prefix (``"order.ship_to"``); every
    problem is recorded under it and the mapping is returned unchanged where it could not
    be filled. Bad input never raises; only a failing geocoder does
    (:class:`GeocoderUnavailableError`).
    """
    sub = Violations(v.path(path))
    try:
        if not isinstance(ship_to, Mapping):
            sub.add("", "must be an object with latitude, longitude, country, postal_code")
            return {}
        result = dict(ship_to)
        _fill(ship_to, result, sub, geocoder, timeout)
        return result
    finally:
        v.extend(sub.items)


def _fill(
    raw: Mapping[str, object],
    out: dict[str, object],
    v: Violations,
    geocoder: Geocoder | None,
    timeout: float,
) -> None:
    """Fill ``out``'s coordinates from ``raw``, recording problems in ``v``."""
    has_lat = not f.is_blank(raw.get("latitude"))
    has_lon = not f.is_blank(raw.get("longitude"))
    if has_lat and has_lon:
        f.number(raw, "latitude", v, minimum=-90, maximum=90)
        f.number(raw, "longitude", v, minimum=-180, maximum=180)
        return
    if has_lat or has_lon:
        missing = "longitude" if has_lat else "latitude"
        v.add(missing, "is required with latitude and longitude given together, or neither")
        return
    country = _text(raw, ("country",), v)
    postal_code = _text(raw, _POSTAL_CODE_KEYS, v, field="postal_code")
    region = _text(raw, ("region",), v)
    if country is not None and country.upper() == "US" and postal_code:
        _fill_from_us_postal_code(postal_code, region, out, v)
        return
    if geocoder is None:
        v.add(
            "",
            "latitude and longitude are required unless a US postal code is given or a "
            "geocoder is configured (router intake --geocoder nominatim)",
        )
        return
    if not postal_code:
        v.add("", "latitude and longitude, or a postal code to geocode, are required")
        return
    query = ", ".join(part for part in (postal_code, region, country) if part)
    point = geocoder.geocode(query, timeout=timeout)
    if point is None or not _in_range(point):
        v.add("", f"no place found for {query!r}; give latitude and longitude")
        return
    out["latitude"] = point.latitude
    out["longitude"] = point.longitude


def _fill_from_us_postal_code(
    postal_code: str, region: str | None, out: dict[str, object], v: Violations
) -> None:
    matched = _US_POSTAL_CODE.fullmatch(postal_code)
    found = us_postal_point(matched.group(1)) if matched else None
    if found is None:
        v.add("postal_code", f"unknown US postal code {postal_code!r} (#####, #####-####)")
        return
    out["latitude"], out["longitude"], state = found
    if not region and state:
        out["region"] = state


def _text(
    raw: Mapping[str, object], keys: tuple[str, ...], v: Violations, *, field: str = ""
) -> str | None:
    """The first of ``keys`` that is present, stripped; ``None`` when absent or blank."""
    for key in keys:
        value = raw.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            v.add(field or key, f"must be a string, got {type(value).__name__}")
            return None
        return value.strip() or None
    return None


def _in_range(point: GeocodedPoint) -> bool:
    lat, lon = point.latitude, point.longitude
    finite = math.isfinite(lat) and math.isfinite(lon)
    return finite and -90 <= lat <= 90 and -180 <= lon <= 180
