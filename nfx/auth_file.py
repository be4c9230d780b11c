"""The auth file: Streamlit's `[auth]` section (OpenID Connect sign-in, as Streamlit's docs
describe it) and NFX's own `[nfx]` keys, in one TOML file.

`nfx app --auth FILE` (or $NFX_AUTH_FILE) names it; the app hands it to Streamlit as its
secrets file, so `st.login` reads `[auth]` from it, and NFX reads `[nfx] admins` from it. It
is checked here before the app starts, so a mistake is one line at the command line rather
than an error page after someone clicked "Sign in".
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nfx.errors import InputError

AUTH_FILE_VARIABLE = "NFX_AUTH_FILE"
# set by `nfx app --insecure-no-auth`: the app, open to anyone, says so on every page
INSECURE_VARIABLE = "NFX_INSECURE_NO_AUTH"
PROVIDER_KEYS = ("client_id", "client_secret", "server_metadata_url")


@dataclass(frozen=True)
class AuthFile:
    path: Path
    providers: tuple[str, ...]  # st.login's argument for each: "" is [auth]'s own provider
    admins: frozenset[str]  # lower-cased emails

    def provider_label(self, provider: str) -> str:
        """'Sign in' for the one provider of [auth]; 'Sign in with Google' for [auth.google]."""
        return "Sign in" if not provider else f"Sign in with {provider.capitalize()}"


def _provider_problem(section: dict[str, Any], where: str) -> str | None:
    missing = [key for key in PROVIDER_KEYS if not section.get(key)]
    if missing:
        return f"{where} lacks {', '.join(missing)}"
    return None


def read_auth_file(path: str | Path) -> AuthFile:
    """The file's sign-in providers and admins; InputError (one line) for a file that is
    missing, is not TOML, or lacks what Streamlit's st.login needs."""
    file = Path(path).expanduser()
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"auth file {file}: not found") from None
    except OSError as exc:
        raise InputError(f"auth file {file}: cannot be read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"auth file {file}: not valid TOML ({exc})") from None
    auth = data.get("auth")
    if not isinstance(auth, dict):
        raise InputError(f"auth file {file}: no [auth] section (see the README, "
                         "“Sharing NFX with a team”)")
    for key in ("redirect_uri", "cookie_secret"):
        if not isinstance(auth.get(key), str) or not auth[key]:
            raise InputError(f"auth file {file}: [auth] lacks {key}")
    if not auth["redirect_uri"].endswith("/oauth2callback"):
        raise InputError(f"auth file {file}: [auth] redirect_uri must end with "
                         "/oauth2callback (the app's address, then /oauth2callback)")
    named = {name: section for name, section in auth.items()
             if isinstance(section, dict) and name != "client_kwargs"}
    providers: list[str] = []
    if any(key in auth for key in PROVIDER_KEYS):
        if problem := _provider_problem(auth, "[auth]"):
            raise InputError(f"auth file {file}: {problem}")
        providers.append("")
    for name, section in named.items():
        if "_" in name:
            raise InputError(f"auth file {file}: [auth.{name}]: Streamlit's provider names "
                             "have no underscore")
        if problem := _provider_problem(section, f"[auth.{name}]"):
            raise InputError(f"auth file {file}: {problem}")
        providers.append(name)
    if not providers:
        raise InputError(f"auth file {file}: [auth] names no provider (client_id, "
                         "client_secret, server_metadata_url)")
    nfx = data.get("nfx", {})
    admins = nfx.get("admins", []) if isinstance(nfx, dict) else None
    if not isinstance(admins, list) or not all(isinstance(a, str) for a in admins):
        raise InputError(f"auth file {file}: [nfx] admins must be a list of emails")
    return AuthFile(file.resolve(), tuple(providers),
                    frozenset(a.strip().lower() for a in admins if a.strip()))
