"""``python -m benchmarks.fulfillment``: :func:`benchmarks.fulfillment.run.main`."""

from benchmarks.fulfillment.run import main

raise SystemExit(main())
