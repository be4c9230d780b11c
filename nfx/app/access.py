"""Who is using the app: whether sign-in is on (the auth file `nfx app --auth` names), the
person behind a signed-in email, and how a page names who queued something.

The pages read `st.user` and hand the email here; everything a person does goes through the
queue and the store with that Person, which apply the rule (nfx.people).
"""

from __future__ import annotations

import os
from functools import lru_cache

from nfx.auth_file import AUTH_FILE_VARIABLE, INSECURE_VARIABLE, AuthFile, read_auth_file
from nfx.errors import InputError
from nfx.people import LOCAL, LOCAL_NAME, Person, signed_in

__all__ = ["InputError", "Person", "LOCAL", "auth_file", "sign_in_required", "sign_in_buttons",
           "insecure_notice", "person", "owner_text", "NO_EMAIL"]

INSECURE_NOTICE = ("Open to anyone who can reach it: this app was started with "
                   "--insecure-no-auth, so there is no sign-in and everyone acts as “local”, "
                   "who may change everything. Configure sign-in with `nfx app --auth FILE`.")
NO_EMAIL = ("Your sign-in provider did not tell NFX your email address, which names what you "
            "queue: ask for the “email” scope (Streamlit asks for it by default).")


@lru_cache(maxsize=4)
def _read(path: str) -> AuthFile:
    return read_auth_file(path)


def auth_file() -> AuthFile | None:
    """The auth file this app's process was started with, if any."""
    path = os.environ.get(AUTH_FILE_VARIABLE)
    return _read(path) if path else None


def sign_in_required() -> bool:
    return auth_file() is not None


def sign_in_buttons() -> list[tuple[str | None, str]]:
    """(st.login's provider argument, the button's words), one per provider of the file."""
    found = auth_file()
    if found is None:
        return []
    return [(provider or None, found.provider_label(provider)) for provider in found.providers]


def insecure_notice() -> str | None:
    """What every page says when the app runs without sign-in on purpose."""
    if auth_file() is None and os.environ.get(INSECURE_VARIABLE):
        return INSECURE_NOTICE
    return None


def person(email: str | None) -> Person:
    """Who acts: the signed-in person (an admin if the auth file lists them), or `local`
    when the app has no sign-in. With sign-in on, no email means no one: InputError."""
    found = auth_file()
    if found is None:
        return LOCAL
    if not email:
        raise InputError(NO_EMAIL)
    return signed_in(email, found.admins)


def owner_text(owner: str) -> str:
    """'queued by alice@example.org'; nothing for `local` in an app without sign-in, where
    everything is local's."""
    if owner == LOCAL_NAME and auth_file() is None:
        return ""
    return f"queued by {owner}"
