"""Subcommands of ``convbench``; each module exposes ``register(subparsers)``."""
