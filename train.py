#!/usr/bin/env python
"""Train a vocoder: ``python train.py -c configs/config.json`` (NVIDIA's command, same flags).

A shim: the program is :mod:`waveglow.cli.train`, installed as ``waveglow-train`` and ``python -m waveglow train``.
"""

import sys

from waveglow.cli.train import main

if __name__ == "__main__":
    sys.exit(main())
