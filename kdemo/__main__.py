"""`python -m kdemo`: the same as the `kdemo` command."""

from kdemo.cli import main

main()
