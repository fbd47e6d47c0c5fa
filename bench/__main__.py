"""``python -m bench``: the CLI, also the entry point torchrun starts (``torchrun -m bench train ...``)."""

from bench.cli import main

main()
