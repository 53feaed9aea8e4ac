import os

# QImage (PNG checks) and the in-process self-test need no display.
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
