"""``python -m srgan`` runs the ``srgan`` command line."""

import sys

from .cli import main

sys.exit(main())
