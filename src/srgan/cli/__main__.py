"""``python -m srgan.cli`` runs the ``srgan`` command line."""

import sys

from . import main

sys.exit(main())
