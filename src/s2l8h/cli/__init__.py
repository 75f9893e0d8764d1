"""The ``s2l8h`` command: thin sub-commands over the Python API."""

from s2l8h.cli.app import app, main

__all__ = ["app", "main"]
