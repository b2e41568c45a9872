"""The error type CLI verbs raise for bad user input (exit code 1, one message, no traceback)."""


class UserError(Exception):
    """A problem with the user's input, reported as one message with exit code 1."""
