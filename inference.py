#!/usr/bin/env python
"""Vocode mel spectrograms: ``python inference.py -f mels.txt -w waveglow_256channels_universal_v5.pt -o out -s 0.6`` (NVIDIA's command, same flags).

A shim: the program is :mod:`waveglow.cli.inference`, installed as ``waveglow-inference`` and ``python -m waveglow inference``.
"""

import sys

from waveglow.cli.inference import main

if __name__ == "__main__":
    sys.exit(main())
