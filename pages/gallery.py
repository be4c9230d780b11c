"""Gallery: thumbnails of results (click one to open it), filtered in the sidebar, one page
fetched at a time; the selection downloads as a ZIP."""

import streamlit as st

from nfx.app import gallery
from nfx.labels import plural
from pages._widgets import (result_dialog_if_open, through_app_navigation, thumbnail_button,
                            thumbnail_styles)

through_app_navigation()

COLUMNS = 4


def setting_filters() -> tuple[dict, dict]:
    """A slider (or a choice) per indexed setting, compact enough for the sidebar."""
    ranges, choices = {}, {}
    for f in gallery.range_filters():
        key = f"g:set:{f.name}"
        if f.kind == "choice":
            choices[f.name] = st.multiselect(f.label, f.options, key=key, help=f.help)
        elif f.kind == "int":
            ranges[f.name] = st.slider(f.label, f.minimum, f.maximum, (f.minimum, f.maximum),
                                       key=key, help=f.help)
        else:
            ranges[f.name] = st.select_slider(f.label, f.options, (f.options[0], f.options[-1]),
                                              format_func=f.text, key=key, help=f.help)
    return ranges, choices


st.title("Gallery")
options = gallery.filter_options()

with st.sidebar:
    st.header("Filters")
    content_ids = st.multiselect("Content", [r.id for r in options.contents], key="g:content",
                                 format_func={r.id: r.name for r in options.contents}.get)
    style_ids = st.multiselect("Style", [r.id for r in options.styles], key="g:style",
                               format_func={r.id: r.name for r in options.styles}.get)
    batch_ids = st.multiselect("Batch", [b.id for b in options.batches], key="g:batch",
                               format_func={b.id: gallery.batch_label(b)
                                            for b in options.batches}.get)
    statuses = st.multiselect("Status", gallery.STATUSES, default=[gallery.JobStatus.DONE], key="g:status",
                              help="Queued, running and failed jobs can be shown too.")
    tags = st.multiselect("Tags", options.tags, key="g:tags")
    favourites_only = st.toggle("Favourites only", key="g:fav")
    dates = st.date_input("Date", value=(), key="g:dates", help="A day or a range of days.")
    with st.expander("Settings"):
        ranges, choices = setting_filters()

head, sort_box, order_box, size_box = st.columns([2.5, 2, 1.5, 1], vertical_alignment="bottom")
sort = sort_box.selectbox("Sort by", list(gallery.SORTS), format_func=gallery.SORTS.get,
                          key="g:sort")
descending = order_box.toggle("Descending", value=True, key="g:desc")
page_size = size_box.selectbox("Per page", gallery.PAGE_SIZES, index=1, key="g:size")

try:
    query = gallery.gallery_filter(content_ids=content_ids, style_ids=style_ids,
                                   batch_ids=batch_ids, statuses=statuses, tags=tags,
                                   favourites_only=favourites_only, dates=dates, ranges=ranges,
                                   choices=choices, sort=sort, descending=descending)
except gallery.InputError as exc:
    st.error(str(exc), icon=":material/error:")
    st.stop()
total = gallery.gallery_count(query)
pages = max(1, -(-total // page_size))
if st.session_state.get("g:page", 1) > pages:
    st.session_state["g:page"] = pages
with head:
    st.caption(plural(total, "result"))
    st.download_button("Download selection (ZIP)", lambda: gallery.export_zip(query),
                       file_name="nfx-gallery-selection.zip", mime="application/zip",
                       icon=":material/folder_zip:", on_click="ignore", disabled=not total,
                       help="The PNGs of every matching result (all pages, up to "
                            f"{gallery.EXPORT_LIMIT}) and settings.csv, as `nfx export` makes.")

cards = gallery.gallery_cards(query, st.session_state.get("g:page", 1) - 1, page_size)
if not cards:
    st.info("Nothing matches these filters yet. Queue a batch on *New batch*, "
            "or widen the filters.")
ids = [c.card.result_id for c in cards if c.card.result_id]
thumbnail_styles()
for start in range(0, len(cards), COLUMNS):
    for column, card in zip(st.columns(COLUMNS), cards[start:start + COLUMNS]):
        with column.container(border=True):
            if card.thumb:
                thumbnail_button(card, f"g-{card.card.result_id}", ids)
            else:
                st.progress(card.card.progress, text=card.card.status)
            st.caption(("★ " if card.card.favourite else "") + card.label)
            if card.card.error:
                st.caption(f":red[{card.card.error}]")

if pages > 1:
    st.pagination(pages, key="g:page")

result_dialog_if_open()
