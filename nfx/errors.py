"""Errors that reach users as one clear line (CLI exit 2, a message in the app)."""


class NFXError(Exception):
    """Base class: anything NFX reports to a user without a traceback."""


class InputError(NFXError):
    """Bad user input: an unreadable image, an invalid setting, a missing file."""


class Canceled(NFXError):
    """A run stopped because its progress callback asked for it."""


class DatabaseUnavailable(NFXError):
    """The database cannot be reached now (a server restart, a cut connection, a write lock
    held too long): nothing was written; the same call may succeed later."""


class StorageRefused(NFXError):
    """The database is reachable but refuses to store: its disk is full, or it is read-only.
    Nothing was written; it will not go away by itself, only when someone frees the disk."""


class NotPermitted(NFXError):
    """A person asked to change what is not theirs (nfx.people): refused, nothing written."""
