"""`python -m minitiny ...` is the `minitiny` command (minitiny/cli.py)."""
import sys

from minitiny.cli import main

sys.exit(main())
