"""New batch's regions panel: per photo, a mask painted over it or uploaded, and each colour's
style entry or "Keep photo". Layout only: the view is nfx.app.masks."""

from __future__ import annotations

import streamlit as st
from streamlit_drawable_canvas import st_canvas

from nfx.app import masks
from pages._widgets import FORM, KEEP, MASKS

MASK_TYPES = ["png", "gif", "bmp", "tif", "tiff", "webp"]  # lossless: flat colours stay flat
TOOLS = {"Brush": "freedraw", "Rectangle": "rect", "Polygon": "polygon", "Circle": "circle"}


def choices() -> dict:
    return st.session_state.setdefault(MASKS, {})


def error_key(photo_id: int) -> str:
    return f"{FORM}:mask:{photo_id}:error"


def use_mask(photo, name: str, data: bytes, entry_count: int) -> None:
    """Store a mask for the photo and guess its assignments; an error line if refused."""
    try:
        record = masks.add_mask(name, data, photo)
        colours = [c for c, _ in masks.mask_colours(record)]
    except masks.InputError as exc:
        st.session_state[error_key(photo.id)] = str(exc)
        return
    st.session_state[error_key(photo.id)] = None
    choices()[photo.id] = masks.MaskChoice(record.id,
                                          masks.default_assignments(colours, entry_count))


def ingest_upload(photo, entry_count: int) -> None:
    file = st.session_state.get(f"{FORM}:mask:{photo.id}:upload")
    if file is not None:
        use_mask(photo, file.name, file.getvalue(), entry_count)


def remove_mask(photo_id: int) -> None:
    choices().pop(photo_id, None)


def assign(photo_id: int, colour: str, key: str) -> None:
    choice = choices()[photo_id]
    choices()[photo_id] = masks.MaskChoice(choice.mask_id,
                                          {**choice.assignments, colour: st.session_state[key]})


def paint(photo, entry_count: int) -> None:
    width, height = masks.canvas_size(photo)
    brush, tool, size = st.columns([3, 2, 2])
    colour_label = brush.radio("Colour", [n for n, _ in masks.PALETTE], horizontal=True,
                               key=f"nbb:mask:{photo.id}:colour")
    colour = dict(masks.PALETTE)[colour_label]
    mode = tool.selectbox("Tool", list(TOOLS), key=f"nbb:mask:{photo.id}:tool")
    stroke = size.slider("Brush", 4, 80, 30, key=f"nbb:mask:{photo.id}:stroke")
    canvas = st_canvas(fill_color=colour, stroke_color=colour, stroke_width=stroke,
                       background_image=masks.photo_picture(photo, max(width, height)),
                       width=width, height=height, drawing_mode=TOOLS[mode],
                       return_image_data=True, key=f"nbb:mask:{photo.id}:canvas")
    st.caption("Paint each region in its own colour; what stays unpainted is one region too "
               "(white). Anti-aliased edges snap to the nearest colour.")
    blank = masks.is_blank(canvas.image_data)
    if st.button("Use this painting as the mask", key=f"nbb:mask:{photo.id}:use",
                 icon=":material/brush:", disabled=blank):
        use_mask(photo, f"{masks.stem(photo.name)}-mask.png",
                 masks.painted_mask(canvas.image_data), entry_count)
        st.rerun()


def assignments(photo, entry_labels: list[str]) -> None:
    choice = choices()[photo.id]
    mask = masks.mask_record(choice.mask_id)
    picture, assign_column = st.columns([1, 1.4])
    picture.image(masks.overlay(photo, mask), caption=f"{mask.name} over {photo.name}",
                  width="stretch")
    options = list(range(1, len(entry_labels) + 1)) + [masks.KEEP_PHOTO]
    labels = {i + 1: label for i, label in enumerate(entry_labels)} | {
        masks.KEEP_PHOTO: "Keep photo"}
    with assign_column:
        for colour, share in masks.mask_colours(mask):
            key = f"nbb:mask:{photo.id}:{choice.mask_id}:{colour}"
            value = choice.assignments.get(colour)
            st.selectbox(f"{masks.colour_name(colour)} ({colour}, {share:.0%} of the photo)",
                         options, index=options.index(value) if value in options else None,
                         format_func=lambda v: labels.get(v, str(v)), key=key,
                         placeholder="Choose a style or Keep photo",
                         on_change=assign, args=(photo.id, colour, key))
        st.button("Remove mask", key=f"nbb:mask:{photo.id}:remove", icon=":material/close:",
                  on_click=remove_mask, args=(photo.id,))


def regions_panel(photos: list, entry_labels: list[str]) -> dict:
    """The expander; returns {content id: MaskChoice} of the chosen photos."""
    kept = {i: c for i, c in choices().items() if any(p.id == i for p in photos)}
    with st.expander("Regions: a mask per photo, each area its own style or kept as it is",
                     expanded=bool(kept)):
        if not photos or not entry_labels:
            st.caption("Choose content and style images first.")
            return kept
        names = {p.id: p.name for p in photos}
        photo_id = st.selectbox("Photo", list(names), format_func=names.get,
                                key=f"{FORM}:mask:photo", persist_state=KEEP)
        photo = next(p for p in photos if p.id == photo_id)
        if photo.id in choices():
            assignments(photo, entry_labels)
        else:
            painted, uploaded = st.tabs(["Paint", "Upload a mask"])
            with painted:
                paint(photo, len(entry_labels))
            with uploaded:
                st.file_uploader("Mask picture (flat colours, the photo's aspect ratio)",
                                 type=MASK_TYPES, key=f"{FORM}:mask:{photo.id}:upload",
                                 on_change=ingest_upload, args=(photo, len(entry_labels)))
        error = st.session_state.get(error_key(photo.id))
        if error:
            st.error(error)
    return kept
