#!/usr/bin/env python
"""A shim with the same flags: the program is :mod:`waveglow.cli.compute_mels` (``waveglow-compute-mels``, ``python -m waveglow compute-mels``).

Needs the package installed (``make setup`` or ``pip install .``); ``--help`` lists the flags.
"""

import sys

from waveglow.cli.compute_mels import main

if __name__ == "__main__":
    sys.exit(main())
