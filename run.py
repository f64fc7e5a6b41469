#!/usr/bin/env python3
"""Entry point: `python run.py COMMAND` is the same as the `tierdesk` console script."""
import sys

from daemon.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
