"""NFX web app: the entry point `streamlit run streamlit_app.py` (or `python -m nfx app`).

Only navigation lives here, with the watch on finished batches that every page shares. Each
page is a layout over its view module in `nfx.app`. With sign-in on (`nfx app --auth FILE`),
a visitor who is not signed in gets the sign-in page and nothing else: no other page is in
the navigation, and nothing below the gate runs.
"""

import sys
from pathlib import Path

import streamlit as st

ROOT = Path(__file__).resolve().parent
if str(ROOT) not in sys.path:  # pages import `nfx` and `pages._widgets` from the repo root
    sys.path.insert(0, str(ROOT))

from pages._widgets import (account_bar, batch_watch, outage_notice, sign_in_page,  # noqa: E402
                            signed_out)

st.set_page_config(page_title="NFX style transfer", page_icon="🎨", layout="wide")

PAGES = [
    st.Page("pages/home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/photo_library:"),
    st.Page("pages/new_batch.py", title="New batch", icon=":material/add_photo_alternate:"),
    st.Page("pages/queue.py", title="Queue", icon=":material/pending_actions:"),
    st.Page("pages/compare.py", title="Compare", icon=":material/compare:"),
    st.Page("pages/png_info.py", title="PNG info", icon=":material/info:"),
]

if signed_out():  # every page's address shows the sign-in page, and nothing else runs
    st.navigation([st.Page(sign_in_page, title="Sign in", icon=":material/login:",
                           url_path=p.url_path or None, default=not p.url_path)
                   for p in PAGES], position="hidden").run()
    st.stop()

page = st.navigation(PAGES, position="top")  # the sidebar is the gallery's filters
account_bar()  # who is signed in (or that nobody need be), on every page
batch_watch()  # draws nothing but toasts: no space taken
with outage_notice():  # the database away: a warning that retries, not a traceback
    page.run()
