"""Errors that reach users as one clear line (CLI exit 2, a message in the app)."""


class NFXError(Exception):
    """Base class: anything NFX reports to a user without a traceback."""


class InputError(NFXError):
    """Bad user input: an unreadable image, an invalid setting, a missing file."""


class Canceled(NFXError):
    """A run stopped because its progress callback asked for it."""
