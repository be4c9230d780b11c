"""The app's web server: Streamlit's own (`st.App` over streamlit_app.py), run by
`python -m nfx app` as `streamlit run app_server.py`, with one thing added.

Streamlit serves some files beside the page, at addresses of their own: `/media/…` (the
result dialog's full-size picture, every `st.image`, downloads) and `/_stcore/upload_file/…`.
Its media addresses are hashes of the bytes, hard to guess but not secret (a browser's
history, a proxy's log, a pasted link), and Streamlit answers them without looking at who
asks. With sign-in on, `SignedInFiles` answers them only for a request carrying a valid
sign-in cookie (the one `st.login` sets, signed with the auth file's cookie_secret); anyone
else gets 403. Without sign-in it changes nothing.
"""

from __future__ import annotations

import json
import os
from typing import Any

import streamlit as st
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from streamlit import config
from streamlit.auth_util import get_cookie_with_chunks
from streamlit.web.server.server_util import get_cookie_secret
from streamlit.web.server.starlette.starlette_app_utils import decode_signed_value
from streamlit.web.server.starlette.starlette_server_config import USER_COOKIE_NAME

AUTH_FILE_VARIABLE = "NFX_AUTH_FILE"  # nfx.auth_file's: pages and this file import no nfx
GUARDED = ("media/", "_stcore/upload_file/")  # under the server's base URL path


def signed_in(cookies: dict[str, str]) -> bool:
    """Whether these cookies carry a sign-in that Streamlit itself would accept."""
    secret = get_cookie_secret()

    def cookie(name: str) -> bytes | None:
        raw = cookies.get(name)
        return None if raw is None else decode_signed_value(secret, name,
                                                            raw.encode("latin-1"))

    value = get_cookie_with_chunks(cookie, USER_COOKIE_NAME)
    if not value:
        return False
    try:
        return bool(json.loads(value).get("is_logged_in"))
    except (ValueError, AttributeError):
        return False


class SignedInFiles:
    """ASGI middleware: with sign-in on, Streamlit's media and upload addresses answer only
    signed-in people."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http" and os.environ.get(AUTH_FILE_VARIABLE):
            base = "/" + (config.get_option("server.baseUrlPath") or "").strip("/")
            path = scope["path"].removeprefix(base.rstrip("/")).lstrip("/")
            if path.startswith(GUARDED) and not signed_in(Request(scope).cookies):
                await PlainTextResponse("Sign in first.", status_code=403)(scope, receive, send)
                return
        await self.app(scope, receive, send)


app = st.App("streamlit_app.py", middleware=[Middleware(SignedInFiles)])
