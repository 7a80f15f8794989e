#!/usr/bin/env python
"""A shim with the same flags: the program is :mod:`waveglow.cli.average_checkpoints` (``waveglow-average-checkpoints``, ``python -m waveglow average-checkpoints``).

Needs the package installed (``make setup`` or ``pip install .``); ``--help`` lists the flags.
"""

import sys

from waveglow.cli.average_checkpoints import main

if __name__ == "__main__":
    sys.exit(main())
