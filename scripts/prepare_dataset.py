#!/usr/bin/env python
"""A shim with the same flags: the program is :mod:`waveglow.cli.prepare_dataset` (``waveglow-prepare-dataset``, ``python -m waveglow prepare-dataset``).

Needs the package installed (``make setup`` or ``pip install .``); ``--help`` lists the flags.
"""

import sys

from waveglow.cli.prepare_dataset import main

if __name__ == "__main__":
    sys.exit(main())
