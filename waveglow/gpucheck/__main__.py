"""``python -m waveglow.gpucheck [OUT] [--cpu-rehearsal] [--budget SECONDS]``."""

import sys

from .run import main

if __name__ == "__main__":
    sys.exit(main())
