"""A secured deployment end to end, as an operator sets it up (docs/security.md).

Real processes: tokens issued with ``router tokens issue`` into a SQLite ledger; ``router
serve --auth`` with TLS from a test CA; ``router intake`` serving HTTPS and calling the
service over TLS; curl-like calls with httpx, and the ``router`` client commands with
``ROUTER_TOKEN`` in their environment (never on their command line).
"""

from __future__ import annotations

import os
import ssl
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from benchmarks.fuzz import processes
from tests.intake.conftest import ROUTER, TINY, _start, tiny_orders
from tests.pki import Authority


@dataclass(frozen=True)
class Deployment:
    """The service's address, the gateway's HTTPS URL, the CA, a token per principal."""

    target: str
    url: str
    ca: Path
    tokens: dict[str, str]


def _issue(ledger: str, name: str, *roles: str) -> str:
    args = [str(ROUTER), "tokens", "issue", name, *(f"--role={r}" for r in roles)]
    done = subprocess.run(
        [*args, "--ledger", ledger], capture_output=True, text=True, check=True, timeout=60
    )
    return done.stdout.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    work = tmp_path_factory.mktemp("secured")
    ca = Authority(work, "ops")
    server = ca.issue("server", "router.internal")
    ledger = f"sqlite://{work / 'ledger.db'}"
    tokens = {
        "shop": _issue(ledger, "shop", "oms"),
        "other-shop": _issue(ledger, "other-shop", "oms"),
        "wms": _issue(ledger, "wms", "feed"),
        "ana": _issue(ledger, "ana", "analyst"),
    }
    serve, target = _start(
        [
            "serve", "--scenario", str(TINY), "--ledger", ledger, "--port", "0", "--auth",
            "--metrics-port", "0",
            "--tls-cert", str(server.cert), "--tls-key", str(server.key),
        ],
        work / "serve.log",
    )  # fmt: skip
    intake = None
    try:
        intake, address = _start(
            [
                "intake", "--port", "0", "--target", target, "--metrics-port", "0",
                "--tls-cert", str(server.cert), "--tls-key", str(server.key),
                "--service-ca", str(ca.cert),
            ],
            work / "intake.log",
        )  # fmt: skip
        yield Deployment(target, f"https://{address}", ca.cert, tokens)
    finally:
        if intake is not None:
            processes.stop(intake)
        processes.stop(serve)


def _trust(d: Deployment) -> ssl.SSLContext:
    """Trust the deployment's CA only."""
    return ssl.create_default_context(cafile=str(d.ca))


def _get(d: Deployment, token: str | None) -> httpx.Response:
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with httpx.Client(base_url=d.url, verify=_trust(d), timeout=30) as http:
        return http.get("/v1/stock", params={"sku": "A"}, headers=headers)


def test_the_gateway_passes_the_callers_token_and_maps_refusals_to_401_and_403(
    deployment: Deployment,
) -> None:
    """No token: 401; a token whose role may not: 403; one whose role may: 200 (HTTPS)."""
    assert _get(deployment, None).status_code == 401
    assert _get(deployment, "rt_0000_forged").status_code == 401
    assert _get(deployment, deployment.tokens["ana"]).status_code == 200
    with httpx.Client(base_url=deployment.url, verify=_trust(deployment), timeout=30) as http:
        refused = http.post(
            "/v1/orders:route",
            json={"order": tiny_orders()[0]},
            headers={
                "Authorization": f"Bearer {deployment.tokens['wms']}",
                "Idempotency-Key": "sec-1",
            },
        )
    assert refused.status_code == 403, refused.text
    assert "may not call" in refused.text


def _rules_list(d: Deployment, token: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "ROUTER_TOKEN"}
    if token is not None:
        env["ROUTER_TOKEN"] = token
    args = [str(ROUTER), "rules", "list", "--target", d.target, "--tls-ca", str(d.ca)]
    return subprocess.run(args, capture_output=True, text=True, env=env, timeout=60)


def test_client_commands_read_the_token_from_the_environment(deployment: Deployment) -> None:
    """``router rules list`` over TLS: refused without ROUTER_TOKEN, answered with it."""
    refused = _rules_list(deployment, None)
    assert refused.returncode != 0
    assert "UNAUTHENTICATED" in refused.stdout + refused.stderr
    answered = _rules_list(deployment, deployment.tokens["ana"])
    assert answered.returncode == 0, answered.stderr
    assert "active" in answered.stdout.lower()


def test_tokens_are_listed_without_secrets_and_revoked_by_id(tmp_path: Path) -> None:
    """``router tokens list`` shows ids, principals and roles, never a token's secret."""
    ledger = f"sqlite://{tmp_path / 'tokens.db'}"
    token = _issue(ledger, "shop", "oms", "analyst")
    token_id = token.split("_")[1]

    def tokens(*args: str) -> str:
        done = subprocess.run(
            [str(ROUTER), "tokens", *args, "--ledger", ledger],
            capture_output=True,
            text=True,
            check=True,
            timeout=60,
        )
        return done.stdout

    listed = tokens("list")
    assert token_id in listed and "shop" in listed and "analyst,oms" in listed
    assert token.split("_", 2)[2] not in listed
    assert "active" in listed
    tokens("revoke", token_id)
    assert "revoked" in tokens("list")
    bad = subprocess.run(
        [str(ROUTER), "tokens", "issue", "x", "--role", "root", "--ledger", ledger],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode == 2 and "unknown role 'root'" in bad.stderr


def test_an_authorization_header_grpc_cannot_carry_is_401_not_500(
    deployment: Deployment,
) -> None:
    """Non-ASCII or over-long credentials are refused by the gateway itself, as 401."""
    with httpx.Client(base_url=deployment.url, verify=_trust(deployment), timeout=30) as http:
        for value in (b"Bearer \\xe9\\xe9", b"Bearer " + b"a" * 5000):
            answer = http.get("/v1/stock", params={"sku": "A"}, headers={"Authorization": value})
            assert answer.status_code == 401, answer.text
            assert answer.json()["error"]["status"] == "UNAUTHENTICATED"


def _as(d: Deployment, principal: str) -> httpx.Client:
    """An HTTPS client of the gateway sending ``principal``'s token."""
    token = {"Authorization": f"Bearer {d.tokens[principal]}"}
    return httpx.Client(base_url=d.url, verify=_trust(d), timeout=30, headers=token)


def test_an_oms_sees_only_its_own_decisions_through_the_gateway(deployment: Deployment) -> None:
    """Another oms principal's decision is 404 and absent from lists; an analyst sees it."""
    raw = {**tiny_orders()[0], "order_id": "SEC-DECIDED"}
    mine = {"order_id": "SEC-DECIDED"}
    with (
        _as(deployment, "shop") as shop,
        _as(deployment, "other-shop") as other,
        _as(deployment, "ana") as ana,
    ):
        routed = shop.post(
            "/v1/orders:route", json={"order": raw}, headers={"Idempotency-Key": "decided-1"}
        )
        assert routed.status_code == 200, routed.text
        decision_id = routed.json()["decisionId"]
        got = shop.get(f"/v1/decisions/{decision_id}")
        assert got.status_code == 200 and got.json()["decision"]["owner"] == "shop", got.text
        assert other.get(f"/v1/decisions/{decision_id}").status_code == 404
        assert other.post(f"/v1/decisions/{decision_id}:replay").status_code == 404
        hidden = other.get("/v1/decisions", params=mine)
        assert hidden.status_code == 200 and "decisions" not in hidden.json(), hidden.text
        seen = ana.get("/v1/decisions", params=mine)
        assert [d["decisionId"] for d in seen.json()["decisions"]] == [decision_id], seen.text
