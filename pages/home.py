"""Home: what NFX is, the queue at a glance, recent results (they open) and first steps."""

import streamlit as st

from nfx.app import home
from pages._widgets import (add_samples_button, result_dialog_if_open, sample_previews,
                            through_app_navigation, thumbnail_button, thumbnail_styles)

through_app_navigation()

st.title("NFX · neural style transfer")
st.markdown(
    "NFX repaints a **content** picture in the manner of one or more **style** pictures "
    "(Gatys et al., VGG-19). Queue whole batches — every content × style × setting you want "
    "to try — and a worker runs them while you browse the gallery, compare results and "
    "re-run the best with tweaks.")

library = home.library_counts()
metrics = st.columns(5)
for column, (label, count) in zip(metrics, home.status_metrics()):
    column.metric(label, count)
metrics[4].metric("Library", f"{library['content']} + {library['style']}",
                  help="content images + style images")

left, right = st.columns([3, 2], gap="large")
with left:
    st.subheader("Recent results")
    recent = home.recent_results(6)
    if not recent:
        st.info("No results yet. Queue a batch and they will appear here.")
        if not any(library.values()):
            st.caption("The built-in samples, one click away (*Add sample images*):")
            sample_previews(per_row=3)
    ids = [card.card.result_id for card in recent]
    thumbnail_styles()
    cells = st.columns(3)
    for i, card in enumerate(recent):
        with cells[i % 3]:
            thumbnail_button(card.card.result_id, card.label, card.thumb,
                             f"home-{card.card.result_id}", ids)
            st.caption(card.label)
    if recent:
        st.page_link("pages/gallery.py", label="Open the gallery", icon=":material/photo_library:")

with right:
    st.subheader("First steps")
    st.markdown(
        "1. **Add images**: upload your own on *New batch*, or add the built-in samples.\n"
        "2. **Queue a batch**: pick contents and styles (or style mixes), set or sweep the "
        "settings.\n"
        "3. **Watch it run** on *Queue*: progress, loss and a live preview.\n"
        "4. **Browse and compare** in *Gallery* and *Compare*; re-run any result with tweaks, "
        "or drop an NFX PNG on *PNG info*.")
    added = add_samples_button()
    if added is not None:
        st.success(f"Added {added} sample images." if added
                   else "The sample images are already in the library.")
    st.page_link("pages/new_batch.py", label="Start a new batch", icon=":material/arrow_forward:")

result_dialog_if_open()
