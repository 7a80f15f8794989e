#!/usr/bin/env python
"""A shim with the same flags: the program is :mod:`waveglow.cli.export` (``waveglow-export``, ``python -m waveglow export``).

Needs the package installed (``make setup`` or ``pip install .``); ``--help`` lists the flags.
"""

import sys

from waveglow.cli.export import main

if __name__ == "__main__":
    sys.exit(main())
