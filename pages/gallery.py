"""Gallery: thumbnails of results, filtered in the sidebar, one page fetched at a time."""

import streamlit as st

from nfx import services
from nfx.settings import FIELDS, INDEXED_FIELDS
from pages._widgets import open_result, result_dialog_if_open, through_app_navigation

through_app_navigation()

COLUMNS = 4

st.title("Gallery")
options = services.filter_options()

with st.sidebar:
    st.header("Filters")
    content_ids = st.multiselect("Content", [r.id for r in options.contents], key="g:content",
                                 format_func={r.id: r.name for r in options.contents}.get)
    style_ids = st.multiselect("Style", [r.id for r in options.styles], key="g:style",
                               format_func={r.id: r.name for r in options.styles}.get)
    batch_ids = st.multiselect("Batch", [b.id for b in options.batches], key="g:batch",
                               format_func={b.id: services.batch_label(b)
                                            for b in options.batches}.get)
    statuses = st.multiselect("Status", services.STATUSES, default=["done"], key="g:status",
                              help="Queued, running and failed jobs can be shown too.")
    tags = st.multiselect("Tags", options.tags, key="g:tags")
    favourites_only = st.toggle("Favourites only", key="g:fav")
    dates = st.date_input("Date", value=(), key="g:dates", help="A day or a range of days.")
    ranges, choices = {}, {}
    with st.expander("Settings"):
        for name in INDEXED_FIELDS:
            spec = FIELDS[name]
            if spec.kind == "choice":
                choices[name] = st.multiselect(spec.label, spec.choices, key=f"g:{name}",
                                               help=spec.help)
                continue
            cast = int if spec.kind == "int" else float
            low, high = st.columns(2)
            lo = low.number_input(f"{spec.label} from", value=cast(spec.minimum),
                                  min_value=cast(spec.minimum), max_value=cast(spec.maximum),
                                  key=f"g:{name}:lo", help=spec.help,
                                  **({} if cast is int else {"format": "%g"}))
            hi = high.number_input("to", value=cast(spec.maximum),
                                   min_value=cast(spec.minimum), max_value=cast(spec.maximum),
                                   key=f"g:{name}:hi",
                                   **({} if cast is int else {"format": "%g"}))
            ranges[name] = (lo, hi)

head, sort_box, order_box, size_box = st.columns([2.5, 2, 1.5, 1],
                                                     vertical_alignment="bottom")
sort = sort_box.selectbox("Sort by", list(services.SORTS), format_func=services.SORTS.get,
                          key="g:sort")
descending = order_box.toggle("Descending", value=True, key="g:desc")
page_size = size_box.selectbox("Per page", services.PAGE_SIZES, index=1, key="g:size")

query = services.gallery_filter(content_ids=content_ids, style_ids=style_ids,
                                batch_ids=batch_ids, statuses=statuses, tags=tags,
                                favourites_only=favourites_only, dates=dates, ranges=ranges,
                                choices=choices, sort=sort, descending=descending)
total = services.gallery_count(query)
pages = max(1, -(-total // page_size))
if st.session_state.get("g:page", 1) > pages:
    st.session_state["g:page"] = pages
head.caption(services.plural(total, "result"))

cards = services.gallery_cards(query, st.session_state.get("g:page", 1) - 1, page_size)
if not cards:
    st.info("Nothing matches these filters yet. Queue a batch on *New batch*, "
            "or widen the filters.")
varying = services.varying_settings(cards)
for start in range(0, len(cards), COLUMNS):
    for column, card in zip(st.columns(COLUMNS), cards[start:start + COLUMNS]):
        with column.container(border=True):
            thumb = services.card_thumbnail(card)
            if thumb:
                st.image(thumb, width="stretch")
            else:
                st.progress(card.progress, text=card.status)
            st.caption(("★ " if card.favourite else "") + services.result_label(card)
                       + "  \n" + services.settings_summary(card.settings, varying))
            if card.result_id:
                st.button("Details", key=f"g:open:{card.result_id}", on_click=open_result,
                          args=(card.result_id,), width="stretch")
            elif card.error:
                st.caption(f":red[{card.error}]")

if pages > 1:
    st.pagination(pages, key="g:page")

result_dialog_if_open()
