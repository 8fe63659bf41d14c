"""Benchmarks: a registry of seeded scenarios and the measurements run on them."""
