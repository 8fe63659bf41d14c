"""``python -m router.intake ARGS`` is ``router intake ARGS``."""

import sys

from router.cli import main

sys.exit(main(["intake", *sys.argv[1:]]))
