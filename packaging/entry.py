"""Entry point of the PyInstaller bundle."""

from iqms.cli import main

main()
