"""Errors the command line reports as one line (exit code 2) instead of a traceback."""


class UsageError(Exception):
    """The user asked for something that cannot be done as asked; the message says how to fix it."""
