"""Fuzzing the service and the gateway: strategies from the protos, the long run.

:mod:`benchmarks.fuzz.strategies` draws request bytes from the router.v1 descriptors;
:mod:`benchmarks.fuzz.service` runs them against a ``router serve`` process and checks
the properties after every call. ``make test`` runs a few dozen inputs per RPC
(tests/service/test_fuzz.py); ``python -m benchmarks.fuzz`` the long run
(docs/security.md, Fuzzing).
"""
