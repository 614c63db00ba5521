"""User-facing errors: the CLI prints these as one line, never as a traceback."""


class EdgetpError(Exception):
    """A problem with the user's input (file, argument, data), not a bug."""
