"""PNG info: drop an NFX PNG to see its settings and inputs, and queue it again with changes."""

import streamlit as st

from nfx.app import png_info
from pages._widgets import settings_inputs, through_app_navigation

through_app_navigation()

st.title("PNG info")
st.caption("Every PNG NFX makes carries its settings and the images it was made from. "
           "Drop one here to read them and run it again with changes.")
upload = st.file_uploader("NFX PNG", type=["png"], key="pi:file")
if upload is None:
    st.stop()
try:
    found = png_info.inspect(upload.getvalue(), upload.name)
except png_info.InputError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()

st.subheader(found.title)
picture, inputs = st.columns([2, 3])
picture.image(upload.getvalue(), width="stretch")
with inputs:
    shown = [("content", found.content)] + [("style", s) for s in found.styles]
    cells = st.columns(max(3, len(shown)))
    for cell, (role, record) in zip(cells, shown):
        if record is not None:
            cell.image(png_info.thumbnail(record.sha256), caption=f"{role}: {record.name}",
                       width="stretch")
    for line in found.missing:
        st.warning(line, icon=":material/image_not_supported:")
    if found.facts:
        st.caption(" · ".join(f"{k} {v}" for k, v in sorted(found.facts.items())
                              if not isinstance(v, (dict, list))))
with st.expander("Settings", expanded=not found.missing):
    st.dataframe(png_info.settings_frame(found.settings), width="stretch")
if not found.missing:
    st.subheader("Queue it again")
    values, _ = settings_inputs("pi", found.settings)
    if st.button("Queue again", type="primary", icon=":material/replay:"):
        try:
            st.success(png_info.queue_again(found, values))
        except png_info.InputError as exc:
            st.error(str(exc))
