from __future__ import annotations

import pytest

from models.errors import Violations
from router.intake.addresses import (
    GeocodedPoint,
    GeocoderUnavailableError,
    GeopyGeocoder,
    make_geocoder,
    normalise_ship_to,
    us_postal_point,
)

PATH = "order.ship_to"


class FakeGeocoder:
    """A Geocoder that knows a fixed table of queries and records what it was asked."""

    def __init__(self, places: dict[str, GeocodedPoint]) -> None:
        self.places = places
        self.queries: list[tuple[str, float]] = []

    def geocode(self, query: str, *, timeout: float) -> GeocodedPoint | None:
        self.queries.append((query, timeout))
        return self.places.get(query)


def fields(v: Violations) -> list[str]:
    return [item.field for item in v.items]


def test_given_coordinates_are_kept_as_they_are():
    v = Violations()
    raw = {"latitude": 41.88, "longitude": -87.63, "country": "US", "postal_code": "10001"}
    out = normalise_ship_to(raw, PATH, v, None)
    assert not v
    assert out == raw  # not overwritten from the postal code
    assert out is not raw


def test_zero_coordinates_count_as_given():
    v = Violations()
    out = normalise_ship_to({"latitude": 0, "longitude": 0, "country": "GH"}, PATH, v, None)
    assert not v and out["latitude"] == 0 and out["longitude"] == 0


@pytest.mark.parametrize(
    ("lat", "lon", "bad"),
    [
        (90.5, 0.0, ["order.ship_to.latitude"]),
        (-91, 0.0, ["order.ship_to.latitude"]),
        (0.0, 180.01, ["order.ship_to.longitude"]),
        (-95, -200, ["order.ship_to.latitude", "order.ship_to.longitude"]),
        ("north", 1.0, ["order.ship_to.latitude"]),
    ],
)
def test_out_of_range_coordinates_are_violations(lat: object, lon: object, bad: list[str]):
    v = Violations()
    raw = {"latitude": lat, "longitude": lon, "country": "US"}
    out = normalise_ship_to(raw, PATH, v, None)
    assert fields(v) == bad
    assert out == raw


@pytest.mark.parametrize("given", ["latitude", "longitude"])
def test_only_one_coordinate_is_a_violation(given: str):
    v = Violations()
    raw = {given: 10.0, "country": "US", "postal_code": "10001"}
    out = normalise_ship_to(raw, PATH, v, None)
    missing = "longitude" if given == "latitude" else "latitude"
    assert fields(v) == [f"{PATH}.{missing}"]
    assert out == raw


def test_a_us_postal_code_resolves_offline_and_fills_the_region():
    v = Violations()
    out = normalise_ship_to({"country": "US", "postal_code": "10001"}, PATH, v, None)
    assert not v
    assert out["latitude"] == pytest.approx(40.75, abs=0.02)
    assert out["longitude"] == pytest.approx(-73.99, abs=0.02)
    assert out["region"] == "NY"


def test_camel_case_key_lower_case_country_and_zip_plus_four():
    v = Violations()
    raw = {"country": "us", "postalCode": " 10001-1234 ", "region": "ny"}
    out = normalise_ship_to(raw, PATH, v, None)
    assert not v
    assert out["latitude"] == pytest.approx(40.75, abs=0.02)
    assert out["region"] == "ny"  # a given region is left as it is
    assert out["postalCode"] == " 10001-1234 "


@pytest.mark.parametrize("code", ["00000", "99999", "1000", "100011", "10001-12", "ABCDE"])
def test_an_unknown_us_postal_code_is_a_violation(code: str):
    v = Violations("request")
    raw = {"country": "US", "postal_code": code}
    out = normalise_ship_to(raw, PATH, v, FakeGeocoder({}))
    assert fields(v) == ["request.order.ship_to.postal_code"]
    assert "unknown US postal code" in v.items[0].description
    assert out == raw


def test_zip_lookups_are_cached():
    us_postal_point.cache_clear()
    us_postal_point("10001")
    us_postal_point("10001")
    info = us_postal_point.cache_info()
    assert (info.hits, info.misses) == (1, 1)


@pytest.mark.parametrize(
    "raw",
    [
        {"country": "DE", "postal_code": "10115"},
        {"country": "US"},  # no postal code
        {},
    ],
)
def test_not_resolvable_offline_without_a_geocoder_is_a_violation(
    raw: dict[str, object],
):
    v = Violations()
    out = normalise_ship_to(raw, PATH, v, None)
    assert fields(v) == [PATH]
    assert "US postal code" in v.items[0].description
    assert "--geocoder" in v.items[0].description
    assert out == raw


def test_a_configured_geocoder_resolves_other_countries():
    geocoder = FakeGeocoder({"10115, BE, DE": GeocodedPoint(52.53, 13.38)})
    v = Violations()
    raw = {"country": "DE", "postal_code": "10115", "region": "BE"}
    out = normalise_ship_to(raw, PATH, v, geocoder, timeout=2.5)
    assert not v
    assert (out["latitude"], out["longitude"]) == (52.53, 13.38)
    assert geocoder.queries == [("10115, BE, DE", 2.5)]


def test_a_geocoder_without_an_answer_is_a_violation():
    geocoder = FakeGeocoder({"nowhere": GeocodedPoint(95.0, 0.0)})
    for raw in ({"country": "DE", "postal_code": "00000"}, {"country": "XX", "postal_code": ""}):
        v = Violations()
        assert normalise_ship_to(raw, PATH, v, geocoder) == raw
        assert fields(v) == [PATH]
    v = Violations()
    normalise_ship_to({"postal_code": "nowhere"}, PATH, v, geocoder)  # out of range answer
    assert fields(v) == [PATH]


@pytest.mark.parametrize(
    ("raw", "bad"),
    [
        ({"country": 7, "postal_code": "10001"}, f"{PATH}.country"),
        ({"country": "US", "postalCode": 10001}, f"{PATH}.postal_code"),
    ],
)
def test_wrong_types_are_violations_not_errors(raw: dict[str, object], bad: str):
    v = Violations()
    assert normalise_ship_to(raw, PATH, v, None) == raw
    assert bad in fields(v)


def test_a_ship_to_that_is_not_an_object_is_a_violation():
    v = Violations()
    assert normalise_ship_to(["US"], PATH, v, None) == {}  # type: ignore[arg-type]
    assert fields(v) == [PATH]


def test_make_geocoder_builds_geopy_nominatim_without_calling_it():
    from geopy.geocoders import Nominatim

    geocoder = make_geocoder("nominatim", "ua")
    assert isinstance(geocoder, GeopyGeocoder)
    assert isinstance(geocoder.service, Nominatim)
    assert geocoder.service.headers["User-Agent"] == "ua"
    assert make_geocoder(None, "ua") is None
    assert isinstance(make_geocoder("nominatim", None), GeopyGeocoder)


def test_make_geocoder_refuses_an_unknown_service():
    with pytest.raises(ValueError, match="no-such-geocoder"):
        make_geocoder("no-such-geocoder", "ua")


def test_geopy_answers_and_failures_are_translated():
    from geopy.exc import GeocoderTimedOut

    class Found:
        latitude, longitude = 1.5, 2.5

    class Service:
        def __init__(self, answer: object) -> None:
            self.answer = answer

        def geocode(self, query: str, *, exactly_one: bool, timeout: float) -> object:
            if isinstance(self.answer, Exception):
                raise self.answer
            return self.answer

    assert GeopyGeocoder(Service(Found())).geocode("x", timeout=1) == GeocodedPoint(1.5, 2.5)
    assert GeopyGeocoder(Service(None)).geocode("x", timeout=1) is None
    with pytest.raises(GeocoderUnavailableError):
        GeopyGeocoder(Service(GeocoderTimedOut("slow"))).geocode("x", timeout=1)
