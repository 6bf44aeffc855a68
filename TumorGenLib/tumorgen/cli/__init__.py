"""The ``tumorgen`` command line. Each subcommand is one module with ``register(subparsers)``."""
