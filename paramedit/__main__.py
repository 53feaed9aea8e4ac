"""``python -m paramedit``."""

import sys

from paramedit.cli import main

sys.exit(main())
