"""``python -m archcalc``: the same as the ``archcalc`` command."""

import sys

from archcalc.cli import main

sys.exit(main())
