"""The NetworkService servicer, and the network every request plans on: calendars live.

Calendars (docs/calendars.md) are stored in the ledger, so that a holiday or a closure set
through any replica is used by every replica from its next request. :class:`LiveNetwork`
gives routing the scenario's network with the ledger's calendars.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from typing import TypeVar

import grpc

from models.network import Network
from router.ledger.stock import StockStore
from router.service.convert import calendar_from_proto, calendar_to_proto
from router.service.errors import abort_on_error
from router.v1 import router_pb2, router_pb2_grpc

MAX_CALENDAR_READS = 3
"""Ledger reads a request makes at most while the calendars keep changing under it."""

R = TypeVar("R")


class LiveNetwork:
    """The scenario's ``network`` with the calendars stored in ``ledger``.

    :meth:`current` reads the calendar revision on every call (one primary-key lookup) and
    the calendars only when the revision has moved; the network is then rebuilt once, and
    the engine builds its arrays for it once. Routing reads the revision with the rest of
    what it plans with and checks it with :meth:`at`.
    """

    def __init__(self, ledger: StockStore, network: Network) -> None:
        self._ledger = ledger
        self._base = network
        self._lock = threading.Lock()
        self._revision = -1
        self._network = network

    def current(self) -> Network:
        """The network with the calendars of the ledger's latest revision."""
        return self.at(self._ledger.calendar_revision())

    def last(self) -> Network:
        """The network as last built, without asking the ledger (check it with :meth:`at`).

        Built first (as :meth:`current`) when it never was.
        """
        with self._lock:
            if self._revision >= 0:
                return self._network
        return self.current()

    def read(self, read: Callable[[Network], R], revision: Callable[[R], int]) -> tuple[Network, R]:
        """``read`` (a request converted and its ledger read) on the network it saw.

        Done on the network last built; only when the read's calendar ``revision`` shows
        the calendars moved since is the network rebuilt and ``read`` done again on it (a
        ship window may differ), at most :data:`MAX_CALENDAR_READS` times.
        """
        network = self.last()
        for attempt in range(1, MAX_CALENDAR_READS + 1):
            result = read(network)
            latest = self.at(revision(result))
            if latest is network or attempt == MAX_CALENDAR_READS:
                return network, result
            network = latest
        raise AssertionError("unreachable")

    def at(self, revision: int) -> Network:
        """The network with the calendars of ``revision``, a revision just read from the ledger.

        The network last built when it is at that revision (no read); else the calendars
        are read and the network rebuilt (at ``revision`` or, when they moved on
        meanwhile, a later one).
        """
        with self._lock:
            if revision == self._revision:
                return self._network
        revision, calendars = self._ledger.calendars()
        network = replace(self._base, calendars=calendars)
        with self._lock:
            if revision > self._revision:  # a concurrent reload may have read a later one
                self._revision, self._network = revision, network
            return self._network


class NetworkServicer(router_pb2_grpc.NetworkServiceServicer):
    """Lists and sets the calendars of the nodes and carrier services of ``network``."""

    def __init__(self, ledger: StockStore, network: Network) -> None:
        self._ledger = ledger
        self._network = network

    def ListCalendars(
        self, request: router_pb2.ListCalendarsRequest, context: grpc.ServicerContext
    ) -> router_pb2.ListCalendarsResponse:
        """Every calendar the ledger holds, nodes' then services', by owner."""
        with abort_on_error(context):
            revision, calendars = self._ledger.calendars()
            return router_pb2.ListCalendarsResponse(
                calendars=[calendar_to_proto(*entry) for entry in calendars.entries()],
                revision=revision,
            )

    def SetCalendar(
        self, request: router_pb2.SetCalendarRequest, context: grpc.ServicerContext
    ) -> router_pb2.SetCalendarResponse:
        """Validate against the network → store in the ledger → echo it as stored."""
        with abort_on_error(context):
            kind, owner, calendar = calendar_from_proto(request.calendar, self._network)
            revision = self._ledger.set_calendar(kind, owner, calendar)
            return router_pb2.SetCalendarResponse(
                calendar=calendar_to_proto(kind, owner, calendar), revision=revision
            )
