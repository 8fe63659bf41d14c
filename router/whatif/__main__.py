"""``python -m router.whatif``: the what-if command (:func:`router.whatif.run.main`)."""

from router.whatif.run import main

raise SystemExit(main())
