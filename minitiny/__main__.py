"""`python -m minitiny ...` is the `minitiny` command (minitiny/cli/__init__.py)."""
import sys

from minitiny.cli import main

sys.exit(main())
