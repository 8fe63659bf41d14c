"""The RoutingService servicer: glue from the RPC to the engine and back."""

from __future__ import annotations

import math

import grpc

from models.scenario import Scenario
from router.engine import plan_order
from router.engine.solve import ENGINES, FAST
from router.engine.stop import Stop
from router.service.convert import plan_order_args_from_proto, plan_to_proto
from router.service.errors import abort_on_error
from router.v1 import router_pb2, router_pb2_grpc

DEADLINE_MARGIN_S = 0.1
"""Time kept back from the RPC's deadline for converting and sending the plan."""


class RoutingServicer(router_pb2_grpc.RoutingServiceServicer):
    """Plans orders against one scenario's network, stock and rules; never changes them.

    ``engine`` names the engine every request is planned with (one of ``ENGINES``).
    """

    def __init__(
        self, scenario: Scenario, *, default_time_limit_s: float = 10.0, engine: str = FAST
    ) -> None:
        if engine not in ENGINES:
            raise ValueError(f"unknown engine {engine!r} (engines: {', '.join(ENGINES)})")
        self._scenario = scenario
        self._default_time_limit_s = default_time_limit_s
        self._engine = engine

    def PlanOrder(
        self, request: router_pb2.PlanOrderRequest, context: grpc.ServicerContext
    ) -> router_pb2.PlanOrderResponse:
        """Validate → convert → plan → convert; the deadline and cancellation stop the solve."""
        with abort_on_error(context):
            args = plan_order_args_from_proto(request, self._scenario.network)
            # The solve gets the least of the request's limit, the server's and the deadline.
            time_limit_s = min(args.time_limit_s or math.inf, self._default_time_limit_s)
            remaining_s = context.time_remaining()
            if remaining_s is not None:
                time_limit_s = max(0.0, min(time_limit_s, remaining_s - DEADLINE_MARGIN_S))
            stop = Stop(time_limit_s=time_limit_s)
            if not context.add_callback(stop.set):
                stop.set()  # the RPC has already ended (cancelled)
            plan = plan_order(
                args.order,
                self._scenario.network,
                self._scenario.stock,
                self._scenario.rules,
                stop=stop,
                time_limit_s=time_limit_s,
                engine=self._engine,
                alternatives=args.alternatives,
                counterfactual_nodes=args.counterfactual_node_ids,
            )
            return router_pb2.PlanOrderResponse(plan=plan_to_proto(plan, explain=args.explain))
