"""`python -m archspec ...` runs the `archspec` command."""

import sys

from .cli.main import main

sys.exit(main())
