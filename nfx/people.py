"""Who acts, and the one rule of who may change what.

Every batch and job records who queued it: the signed-in email, or `local` when the app runs
without sign-in and for the command line. A person may cancel, reorder, retry and delete only
what they queued; an admin (listed in the auth file, nfx.auth_file) may for everyone. `local`
is an admin: without sign-in there is one person, and whoever runs the command line holds the
database URL, so refusing them would protect nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

from nfx.errors import NotPermitted

LOCAL_NAME = "local"


@dataclass(frozen=True)
class Person:
    name: str  # the signed-in email (lower-cased), or "local"
    admin: bool = False

    def may_change(self, owner: str) -> bool:
        return self.admin or owner == self.name

    def check(self, owner: str, what: str, verb: str) -> None:
        """NotPermitted, in one line, unless this person may `verb` `what`, owned by `owner`."""
        if not self.may_change(owner):
            raise NotPermitted(f"{what} belongs to {owner}; only they or an admin can {verb} "
                               "it")


LOCAL = Person(LOCAL_NAME, admin=True)


def signed_in(email: str, admins: frozenset[str] = frozenset()) -> Person:
    """The person behind a signed-in email: emails compare without case."""
    name = email.strip().lower()
    return Person(name, admin=name in admins)
