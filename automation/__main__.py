"""`python -m automation` is the `automation` command."""

from automation.cli import main

main()
