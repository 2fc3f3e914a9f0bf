"""``python -m sam2_plugins ...``: the same command line as the ``sam2-plugins`` script."""

import sys

from .cli import main

if __name__ == "__main__":
    sys.exit(main())
