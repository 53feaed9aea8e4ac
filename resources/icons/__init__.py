"""The application icon (SVG source and PNG renderings); a package so setuptools ships it as data."""
