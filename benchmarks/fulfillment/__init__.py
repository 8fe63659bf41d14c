"""The published multi-item fulfillment benchmark (Jasin & Sinha 2015; Ma 2023).

Generator, DLP bound, published baselines and the look-ahead policy. See benchmarks/README.md.
"""
