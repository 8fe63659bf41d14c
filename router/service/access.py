"""Who may call what, and how much: one interceptor in front of every RPC (docs/security.md).

:class:`AccessInterceptor` runs before any servicer code, on every call:

1. **Identity.** A bearer token (``authorization: Bearer rt_…`` metadata, checked against
   the digest the ledger keeps) or a client certificate the server's CA signed (mTLS: the
   certificate's common name is the principal, its organisation entries its roles). No
   credentials, a bad token or a revoked one: UNAUTHENTICATED; an address that keeps
   failing is refused before any lookup. With authentication off (the loopback default of
   ``make run``) every caller is the ``anonymous`` admin.
2. **Roles.** :data:`METHOD_ROLES` is the one table of method → roles; a principal without
   one of them gets PERMISSION_DENIED. A method missing from the table is refused to all
   but admins. Health checks are open to everyone (load balancers probe them).
3. **Admission.** Each authenticated principal has a token-bucket rate limit; solving
   methods take one of a bounded number of solve slots, waiting for one in a short bounded
   queue. A call over its rate, or finding the queue full, is refused at once with
   RESOURCE_EXHAUSTED and a ``google.rpc.RetryInfo`` saying when to come back. The
   server's thread pool (:mod:`router.service.pool`) has more threads than solve slots and
   places in their queue and takes cheap calls first, so health checks are served during
   a flood of large orders instead of queueing behind them.

The principal of the call in progress is :func:`current_principal` (a context variable set
for the servicer's run): reservations record it as their owner, the rules audit log as the
actor.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any, cast

import grpc
from google.protobuf import any_pb2, duration_pb2
from google.rpc import error_details_pb2, status_pb2
from grpc_status import rpc_status

from models.access import Principal, Role, secret_matches, split_token
from router.ledger.access import AccessStore
from router.service.config import AdmissionSettings
from router.service.errors import status_of
from router.service.names import (
    HEALTH_SERVICE,
    INVENTORY_SERVICE,
    NETWORK_SERVICE,
    REFLECTION_SERVICES,
    ROUTING_SERVICE,
    RULES_SERVICE,
)
from router.service.observe import behaviour_field, note_principal

logger = logging.getLogger(__name__)

_R = Role
_ROUTING, _INVENTORY, _RULES, _NETWORK = (
    ROUTING_SERVICE,
    INVENTORY_SERVICE,
    RULES_SERVICE,
    NETWORK_SERVICE,
)
_READERS = frozenset({_R.OMS, _R.FEED, _R.PLANNER, _R.ANALYST})

METHOD_ROLES: dict[str, frozenset[Role]] = {
    f"/{_ROUTING}/PlanOrder": frozenset({_R.OMS, _R.PLANNER, _R.ANALYST}),
    f"/{_ROUTING}/PlanWave": frozenset({_R.OMS, _R.PLANNER, _R.ANALYST}),
    f"/{_ROUTING}/RouteOrder": frozenset({_R.OMS}),
    f"/{_ROUTING}/ConfirmReservation": frozenset({_R.OMS}),
    f"/{_ROUTING}/ReleaseReservation": frozenset({_R.OMS}),
    f"/{_ROUTING}/RejectShipment": frozenset({_R.OMS}),
    f"/{_ROUTING}/GetReservation": frozenset({_R.OMS, _R.ANALYST}),
    f"/{_ROUTING}/ListReservations": frozenset({_R.OMS, _R.ANALYST}),
    f"/{_ROUTING}/GetDecision": frozenset({_R.OMS, _R.PLANNER, _R.ANALYST}),
    f"/{_ROUTING}/ListDecisions": frozenset({_R.OMS, _R.PLANNER, _R.ANALYST}),
    f"/{_ROUTING}/ReplayDecision": frozenset({_R.OMS, _R.PLANNER, _R.ANALYST}),
    f"/{_INVENTORY}/GetStock": _READERS,
    f"/{_INVENTORY}/ApplyStockSnapshot": frozenset({_R.FEED}),
    f"/{_INVENTORY}/ApplyStockDelta": frozenset({_R.FEED}),
    f"/{_NETWORK}/ListCalendars": _READERS,
    f"/{_NETWORK}/SetCalendar": frozenset({_R.PLANNER}),
    f"/{_RULES}/ValidateRules": frozenset({_R.PLANNER, _R.ANALYST}),
    f"/{_RULES}/LintRules": frozenset({_R.PLANNER, _R.ANALYST}),
    f"/{_RULES}/TestRules": frozenset({_R.PLANNER, _R.ANALYST}),
    f"/{_RULES}/TestDrive": frozenset({_R.PLANNER, _R.ANALYST}),
    f"/{_RULES}/PublishRules": frozenset({_R.PLANNER}),
    f"/{_RULES}/ActivateRules": frozenset({_R.PLANNER}),
    f"/{_RULES}/RollbackRules": frozenset({_R.PLANNER}),
    f"/{_RULES}/ListRuleVersions": _READERS,
    f"/{_RULES}/GetRuleVersion": _READERS,
    f"/{_RULES}/DiffRuleVersions": _READERS,
    **{f"/{s}/ServerReflectionInfo": _READERS for s in REFLECTION_SERVICES},
}
"""Method → the roles that may call it (admin may call every method). The one table."""

SOLVING_METHODS = frozenset(
    {
        f"/{_ROUTING}/PlanOrder",
        f"/{_ROUTING}/PlanWave",
        f"/{_ROUTING}/RouteOrder",
        f"/{_ROUTING}/RejectShipment",
        f"/{_ROUTING}/ReplayDecision",
        f"/{_RULES}/LintRules",
        f"/{_RULES}/TestRules",
        f"/{_RULES}/TestDrive",
        f"/{_RULES}/PublishRules",
    }
)
"""Methods that run the solver: each holds a solve slot while it runs."""

OWNER_ONLY = frozenset(
    {
        f"/{_ROUTING}/ConfirmReservation",
        f"/{_ROUTING}/ReleaseReservation",
        f"/{_ROUTING}/RejectShipment",
    }
)
"""Methods on a reservation that only its owner (or an admin) may call."""

ANONYMOUS = Principal("anonymous", frozenset({Role.ADMIN}), "open")
"""Every caller when authentication is off."""

_PRINCIPAL: ContextVar[Principal | None] = ContextVar("principal", default=None)


def current_principal() -> Principal | None:
    """The principal of the RPC this thread is serving (None outside an RPC)."""
    return _PRINCIPAL.get()


def audited_actor(typed: str) -> str:
    """Who a rules change is recorded as: the authenticated principal, else what was typed."""
    principal = current_principal()
    if principal is None or principal.via == "open":
        return typed
    return principal.name


SEE_ALL = frozenset({Role.ADMIN, Role.ANALYST})
"""The roles that look up everyone's reservations."""
SEE_ALL_DECISIONS = SEE_ALL | {Role.PLANNER}
"""The roles that look up everyone's decisions: planners ask why an order went where."""


def visible_owner(everyone: frozenset[Role] = SEE_ALL) -> str | None:
    """Whose reservations (or decisions) the current principal may look up: None: everyone's.

    Open mode and the ``everyone`` roles see all; any other principal (oms) only its own.
    """
    principal = current_principal()
    if principal is None or principal.roles & everyone:
        return None
    return principal.name


def may_act_on(owner: str | None) -> bool:
    """Whether the current principal may confirm or release a reservation of ``owner``."""
    principal = current_principal()
    if principal is None or Role.ADMIN in principal.roles:
        return True
    return owner == principal.name


class _Refused(Exception):
    """A call refused before it ran: its status code, message and retry hint."""

    def __init__(self, code: grpc.StatusCode, message: str, retry_s: float = 0.0) -> None:
        super().__init__(message)
        self.code = code
        self.retry_s = retry_s

    def status(self) -> grpc.Status:
        status = status_pb2.Status(code=self.code.value[0], message=str(self))
        if self.retry_s > 0:
            info = error_details_pb2.RetryInfo(
                retry_delay=duration_pb2.Duration(
                    seconds=int(self.retry_s), nanos=int(self.retry_s % 1 * 1e9)
                )
            )
            packed = any_pb2.Any()
            packed.Pack(info)
            status.details.append(packed)
        return rpc_status.to_status(status)


class Buckets:
    """Token buckets per key: ``rate`` a second, up to ``burst`` at once; thread-safe."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic):
        self._rate = rate
        self._burst = float(max(burst, 1))
        self._clock = clock
        self._lock = threading.Lock()
        self._state: dict[str, tuple[float, float]] = {}  # key -> (tokens, at)

    def take(self, key: str) -> float:
        """0 when a call may go now (a token is taken), else the seconds until one may."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
            if tokens >= 1:
                self._state[key] = (tokens - 1, now)
                return 0.0
            self._state[key] = (tokens, now)
            if len(self._state) > 100_000:  # forget the idle keys of a long-running server
                self._state = {k: v for k, v in self._state.items() if now - v[1] < 60}
            return (1 - tokens) / self._rate

    def wait(self, key: str) -> float:
        """Seconds until ``key`` has a token again (0: it has one now); none is taken."""
        if self._rate <= 0:
            return 0.0
        now = self._clock()
        with self._lock:
            tokens = self._tokens(key, now)
        return 0.0 if tokens >= 1 else (1 - tokens) / self._rate

    def _tokens(self, key: str, now: float) -> float:
        """``key``'s tokens at ``now``: what it had, refilled at the rate up to the burst."""
        tokens, at = self._state.get(key, (self._burst, now))
        return min(self._burst, tokens + (now - at) * self._rate)


MAX_CACHED_TOKENS = 10_000
"""Token lookups kept (known and unknown ids alike); the oldest half goes beyond it."""


class Authenticator:
    """Finds the principal of a call from its bearer token or client certificate.

    Token lookups are cached for ``cache_s`` seconds (a revocation reaches every replica
    within that time); a lookup of an unknown token id is cached too, so a stream of bad
    tokens costs the ledger one read per id and period.
    """

    def __init__(
        self,
        store: AccessStore,
        cache_s: float = 5.0,
        admission: AdmissionSettings | None = None,
    ) -> None:
        self._store = store
        self._cache_s = cache_s
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[float, Any]] = {}
        limits = admission or AdmissionSettings()
        self._failures = Buckets(limits.failed_auth_per_s, limits.failed_auth_burst)

    def principal(self, metadata: Mapping[str, str], context: grpc.ServicerContext) -> Principal:
        """The caller; raises _Refused(UNAUTHENTICATED) when it proves no identity.

        An address that failed too often recently is refused (RESOURCE_EXHAUSTED) before
        its token is looked up, so guessing tokens costs the ledger nothing more.
        """
        peer = _peer_host(context.peer())
        wait = self._failures.wait(peer)
        if wait > 0:
            raise _Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "too many failed authentications from this address",
                retry_s=wait,
            )
        try:
            return self._identify(metadata, context)
        except _Refused:
            self._failures.take(peer)
            raise

    def _identify(self, metadata: Mapping[str, str], context: grpc.ServicerContext) -> Principal:
        header = metadata.get("authorization", "")
        if header:
            scheme, _, token = header.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise _Refused(grpc.StatusCode.UNAUTHENTICATED, "authorization: expected Bearer")
            return self._token_principal(token.strip())
        certificate = certificate_principal(cast(Any, context.auth_context()))
        if certificate is not None:
            return certificate
        raise _Refused(
            grpc.StatusCode.UNAUTHENTICATED,
            "no credentials: send 'authorization: Bearer <token>' or a client certificate",
        )

    def _token_principal(self, token: str) -> Principal:
        parts = split_token(token)
        found = None if parts is None else self._lookup(parts[0])
        if parts is None or found is None or not secret_matches(parts[1], found[1]):
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, "invalid token")
        record = found[0]
        if not record.active:
            raise _Refused(grpc.StatusCode.UNAUTHENTICATED, "token revoked")
        return Principal(record.name, record.roles, "token")

    def _lookup(self, token_id: str) -> Any:
        now = time.monotonic()
        with self._lock:
            cached = self._cache.get(token_id)
        if cached is not None and now - cached[0] < self._cache_s:
            return cached[1]
        found = self._store.token_digest(token_id)
        with self._lock:
            if len(self._cache) >= MAX_CACHED_TOKENS:  # the oldest half goes
                for key in list(self._cache)[: MAX_CACHED_TOKENS // 2]:
                    del self._cache[key]
            self._cache.pop(token_id, None)  # re-inserted last: the newest
            self._cache[token_id] = (now, found)
        return found


def certificate_principal(auth: Mapping[str, Sequence[bytes]]) -> Principal | None:
    """The principal of a verified client certificate: CN its name, O entries its roles.

    gRPC has already checked the certificate against the server's client CA when it is in
    the auth context; organisation entries that are not roles are ignored.
    """
    pem = auth.get("x509_pem_cert")
    if not pem:
        return None
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    cert = x509.load_pem_x509_certificate(pem[0])
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    known = {r.value for r in Role}
    orgs = [str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)]
    roles = Role.parse_all([o for o in orgs if o.lower() in known])
    return Principal(str(names[0].value), roles, "mtls")


class AccessInterceptor(grpc.ServerInterceptor):  # type: ignore[type-arg]
    """Identity, roles and admission for every RPC (module docstring); one per server."""

    def __init__(
        self,
        authenticator: Authenticator | None,
        admission: AdmissionSettings,
        solve_slots: int,
    ) -> None:
        self._authenticator = authenticator
        self._slots = threading.BoundedSemaphore(max(solve_slots, 1))
        self._buckets = Buckets(admission.rate_per_s, admission.burst)
        self._lock = threading.Lock()
        self._solving = 0  # solving calls running or waiting for a slot
        self._max_solving = max(solve_slots, 1) + admission.queued_solves
        self._queue_wait_s = admission.queue_wait_s

    def intercept_service(
        self,
        continuation: Callable[[grpc.HandlerCallDetails], Any],
        handler_call_details: grpc.HandlerCallDetails,
    ) -> Any:
        """The method's handler, its behaviour wrapped in the checks (health: unwrapped).

        Runs on gRPC's polling thread, before the call waits for a worker. Nothing is
        counted here (a call may yet be refused by gRPC's own bound or cancelled while it
        waits, and its behaviour would never run to count it out): a solving call that
        finds every slot and queue place taken at this moment only gets a handler that
        refuses it at once. Behaviours are tagged for :class:`~router.service.pool.
        PriorityPool`: ``deferred`` for solving calls, ``urgent`` for such refusals.
        """
        handler = continuation(handler_call_details)  # a namedtuple: _replace makes a copy
        method = handler_call_details.method
        if handler is None or method.startswith(f"/{HEALTH_SERVICE}/"):
            return handler
        metadata = {
            k: v for k, v in handler_call_details.invocation_metadata or () if isinstance(v, str)
        }
        kind = behaviour_field(handler)
        solving = method in SOLVING_METHODS
        if solving and self._solving >= self._max_solving:  # a peek: counted on the worker
            return handler._replace(**{kind: refusal(_BUSY)})
        behaviour = getattr(handler, kind)
        wrap = self._streaming if handler.response_streaming else self._unary
        wrapped = wrap(method, metadata, behaviour, solving)
        wrapped.deferred = solving
        return handler._replace(**{kind: wrapped})

    def _admit_solve(self) -> bool:
        """Count one more solving call in (running or queued); False when all are taken."""
        with self._lock:
            if self._solving >= self._max_solving:
                return False
            self._solving += 1
            return True

    def _solve_done(self) -> None:
        with self._lock:
            self._solving -= 1

    def _unary(
        self, method: str, metadata: dict[str, str], behaviour: Callable[..., Any], solving: bool
    ) -> Any:
        def run(request: Any, context: grpc.ServicerContext) -> Any:
            with self._admitted(method, metadata, context, solving):
                return behaviour(request, context)

        return run

    def _streaming(
        self, method: str, metadata: dict[str, str], behaviour: Callable[..., Any], solving: bool
    ) -> Any:
        def run(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
            with self._admitted(method, metadata, context, solving):
                yield from behaviour(request, context)

        return run

    def _admitted(
        self,
        method: str,
        metadata: dict[str, str],
        context: grpc.ServicerContext,
        solving: bool,
    ) -> _Admission:
        """The call's admission: principal known, role held, rate kept, solve slot taken.

        A solving call is counted in only once its caller is known and within its rate, so
        no one unauthenticated or over their rate holds a queue place; it is counted out
        when refused here, else when it ends (:class:`_Admission`). Any other error (the
        ledger unreachable while looking a token up) ends the call with its mapped status.
        """
        counted = slot = False
        try:
            principal = self._principal(metadata, context)
            allowed = METHOD_ROLES.get(method, frozenset())
            if not principal.has_any(allowed):
                raise _Refused(
                    grpc.StatusCode.PERMISSION_DENIED,
                    f"{principal.name} ({', '.join(sorted(principal.roles)) or 'no roles'}) "
                    f"may not call {method}; it needs one of: "
                    f"{', '.join(sorted(allowed | {Role.ADMIN}))}",
                )
            wait = 0.0 if principal.via == "open" else self._buckets.take(principal.name)
            if wait > 0:
                raise _Refused(
                    grpc.StatusCode.RESOURCE_EXHAUSTED,
                    f"rate limit of {principal.name}: retry in {wait:.2f}s",
                    retry_s=max(wait, 0.05),
                )
            if solving:
                counted = self._admit_solve()
                if not counted:
                    raise _BUSY
                self._take_slot(context)
                slot = True
        except Exception as error:
            if counted:
                self._solve_done()
            status = error.status() if isinstance(error, _Refused) else status_of(error)
            logger.debug("refused %s: %s", method, error)
            context.abort_with_status(status)
            raise AssertionError("abort_with_status raises") from error
        return _Admission(principal, self._release if slot else None)

    def _release(self) -> None:
        """A solving call ended: its slot is free and it is counted out."""
        self._slots.release()
        self._solve_done()

    def _take_slot(self, context: grpc.ServicerContext) -> None:
        """Take a solve slot, waiting for one as long as the call's deadline allows.

        Raises _Refused when none comes free before the deadline (less 0.2 s) or
        :attr:`AdmissionSettings.queue_wait_s`.
        """
        if self._slots.acquire(blocking=False):
            return
        left = context.time_remaining()
        wait = self._queue_wait_s if left is None else min(self._queue_wait_s, left - 0.2)
        if wait <= 0 or not self._slots.acquire(timeout=wait):
            raise _Refused(
                grpc.StatusCode.RESOURCE_EXHAUSTED,
                "no solve slot came free in time: retry shortly (or on another replica)",
                retry_s=1.0,
            )

    def _principal(self, metadata: Mapping[str, str], context: grpc.ServicerContext) -> Principal:
        if self._authenticator is None:
            return ANONYMOUS
        return self._authenticator.principal(metadata, context)


_BUSY = _Refused(
    grpc.StatusCode.RESOURCE_EXHAUSTED,
    "every solve slot and queue place is taken: retry shortly (or on another replica)",
    retry_s=1.0,
)


def refusal(refused: _Refused) -> Callable[[Any, grpc.ServicerContext], Any]:
    """A behaviour that only ends the call with ``refused`` (run first by the pool)."""
    status = refused.status()  # made once, sent many times

    def refuse(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort_with_status(status)

    refuse.urgent = True  # type: ignore[attr-defined]
    return refuse


class _Admission:
    """An admitted call: its principal set for the servicer, its solve slot given back after."""

    def __init__(self, principal: Principal, release: Callable[[], None] | None) -> None:
        self._principal = principal
        self._release = release
        self._token: Any = None

    def __enter__(self) -> Principal:
        self._token = _PRINCIPAL.set(self._principal)
        if self._principal.via != "open":
            note_principal(self._principal.name)
        return self._principal

    def __exit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):  # a stream resumed in another context
            _PRINCIPAL.reset(self._token)
        if self._release is not None:
            self._release()


def _peer_host(peer: str) -> str:
    """``ipv4:1.2.3.4:5678`` → ``ipv4:1.2.3.4`` (the caller's address without its port)."""
    return peer.rsplit(":", 1)[0] if peer.count(":") >= 2 else peer
