#!/usr/bin/env python
"""python launch.py --study NAME: run a study (see --help). Works under torchrun and
accelerate launch as it is."""

import sys

from lipo.cli import main

if __name__ == "__main__":
    sys.exit(main())
