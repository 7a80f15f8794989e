#!/usr/bin/env python
"""A shim with the same flags: the program is :mod:`waveglow.cli.convert_checkpoint` (``waveglow-convert-checkpoint``, ``python -m waveglow convert-checkpoint``).

Needs the package installed (``make setup`` or ``pip install .``); ``--help`` lists the flags.
"""

import sys

from waveglow.cli.convert_checkpoint import main

if __name__ == "__main__":
    sys.exit(main())
