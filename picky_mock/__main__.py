"""``python -m picky_mock``: the same as the ``picky-mock`` command."""

import sys

from .cli import main

sys.exit(main())
