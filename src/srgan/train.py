"""``python -m srgan.train``: the same as the ``srgan-train`` command."""

import sys

from .cli.train import main

if __name__ == "__main__":
    sys.exit(main())
