"""``python -m router.intake ARGS`` is ``router intake ARGS``."""

import sys

from router.intake.command import main

sys.exit(main())
