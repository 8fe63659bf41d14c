"""Rule sets for planners: documents, lint, golden-order suites, test drives and diffs.

The language itself (strategies, conditions, policies, fallbacks) is :mod:`models.rules`;
the strategy runner is :mod:`router.engine.route`. docs/rules.md is the reference.
"""
