"""``python -m faceprint.cli``."""

from faceprint.cli import run

run()
