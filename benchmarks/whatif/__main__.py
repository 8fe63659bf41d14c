"""``python -m benchmarks.whatif``: the what-if command (:func:`benchmarks.whatif.run.main`)."""

from benchmarks.whatif.run import main

raise SystemExit(main())
