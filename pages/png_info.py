"""PNG info: drop an NFX PNG to see its settings and inputs, and queue it again with changes."""

import streamlit as st

from nfx.app import png_info
from nfx.labels import result_ref
from pages._widgets import (open_result, person, result_dialog_if_open, settings_inputs,
                            through_app_navigation)

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
picture.image(upload.getvalue(), width="stretch", alt=f"{upload.name}: {found.title}")
with inputs:
    shown = [("content", found.content)] + [("style", s) for s in found.styles]
    cells = st.columns(max(3, len(shown)))
    for cell, (role, record) in zip(cells, shown):
        if record is not None:
            cell.image(png_info.thumbnail(record.sha256), caption=f"{role}: {record.name}",
                       width="stretch", alt=f"{role}: {record.name}")
    for line in found.missing:
        st.warning(line, icon=":material/image_not_supported:")
    if found.facts:
        st.markdown(png_info.facts_text(found))
    if found.result_id is not None:
        st.button(f"Open {result_ref(found.result_id)} in the gallery", icon=":material/open_in_new:",
                  key="pib:open", on_click=open_result, args=(found.result_id,))
with st.expander("Settings", expanded=not found.missing):
    st.dataframe(png_info.settings_frame(found.settings), width="stretch")
if not found.missing:
    st.subheader("Queue it again")
    if (note := png_info.same_run_note(found)) is not None:
        st.info(note, icon=":material/info:")
    values, _ = settings_inputs("pi", found.settings)
    if st.button("Queue again", type="primary", icon=":material/replay:"):
        try:
            st.success(png_info.queue_again(found, values, person()))
        except png_info.InputError as exc:
            st.error(str(exc))

result_dialog_if_open()
