"""The published multi-item fulfillment benchmark (Jasin & Sinha 2015; Ma 2023).

Generator, DLP bound, published baselines, and the product's engine and look-ahead
pricing run on it through an adapter (``product.py``). See benchmarks/README.md.
"""
