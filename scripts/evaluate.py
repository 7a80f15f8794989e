#!/usr/bin/env python
"""A shim with the same flags: the program is :mod:`waveglow.cli.evaluate` (``waveglow-evaluate``, ``python -m waveglow evaluate``).

Needs the package installed (``make setup`` or ``pip install .``); ``--help`` lists the flags.
"""

import sys

from waveglow.cli.evaluate import main

if __name__ == "__main__":
    sys.exit(main())
