"""Entry point of the frozen app (PyInstaller needs a script; the wheel uses ``paramedit.cli:main``)."""

import multiprocessing
import sys

from paramedit.cli import main

if __name__ == "__main__":
    # A frozen child process started by multiprocessing must not run the whole CLI again.
    multiprocessing.freeze_support()
    sys.exit(main())
