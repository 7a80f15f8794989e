#!/usr/bin/env python
"""Train on every GPU of this machine: ``python distributed.py -c configs/config.json`` (NVIDIA's command, same flags).

A shim: the program is :mod:`waveglow.cli.distributed`, installed as ``waveglow-distributed`` and ``python -m waveglow distributed``.
"""

import sys

from waveglow.cli.distributed import main

if __name__ == "__main__":
    sys.exit(main())
