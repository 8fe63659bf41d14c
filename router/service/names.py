"""The full names of the services this server hosts, as health checks and reflection know them."""

from __future__ import annotations

from router.v1 import router_pb2

ROUTING_SERVICE = router_pb2.DESCRIPTOR.services_by_name["RoutingService"].full_name
"""``router.v1.RoutingService``."""
INVENTORY_SERVICE = router_pb2.DESCRIPTOR.services_by_name["InventoryService"].full_name
"""``router.v1.InventoryService``."""
RULES_SERVICE = router_pb2.DESCRIPTOR.services_by_name["RulesService"].full_name
"""``router.v1.RulesService``."""
NETWORK_SERVICE = router_pb2.DESCRIPTOR.services_by_name["NetworkService"].full_name
"""``router.v1.NetworkService``."""
HEALTH_SERVICE = "grpc.health.v1.Health"
"""The standard health service: open to every caller."""
REFLECTION_SERVICES = (
    "grpc.reflection.v1alpha.ServerReflection",
    "grpc.reflection.v1.ServerReflection",
)
"""Reflection, as served by grpcio-reflection (both versions of its name)."""
