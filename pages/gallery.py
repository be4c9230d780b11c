"""Gallery: thumbnails of results (click one to open it), filtered in the sidebar, one page
fetched at a time, refreshing itself as results arrive; picked results (or the whole
selection) download as a ZIP."""

import streamlit as st

from nfx.app import gallery
from nfx.labels import plural
from pages._widgets import (outage_notice, KEEP, LAST_RESULT, person, result_dialog_if_open,
                            through_app_navigation, thumbnail_button, thumbnail_styles)

through_app_navigation()

COLUMNS = 4
PICKED = "g:picked"  # result ids ticked for the ZIP


def setting_filters() -> tuple[dict, dict]:
    """A slider (or a choice) per indexed setting, compact enough for the sidebar."""
    ranges, choices = {}, {}
    for f in gallery.range_filters():
        key = f"g:set:{f.name}"
        if f.kind == "choice":
            choices[f.name] = st.multiselect(f.label, f.options, key=key, help=f.help,
                                             persist_state=KEEP)
        elif f.kind == "int":
            ranges[f.name] = st.slider(f.label, f.minimum, f.maximum, (f.minimum, f.maximum),
                                       key=key, help=f.help, persist_state=KEEP)
        else:
            ranges[f.name] = st.select_slider(f.label, f.options, (f.options[0], f.options[-1]),
                                              format_func=f.text, key=key, help=f.help,
                                              persist_state=KEEP)
    return ranges, choices


def pick(result_id: int) -> None:
    """Checkbox callback: tick or untick a result for the ZIP."""
    picked = set(st.session_state.get(PICKED, ()))
    picked ^= {result_id}
    st.session_state[PICKED] = sorted(picked)


st.title("Gallery")
options = gallery.filter_options()

with st.sidebar:
    st.header("Filters")
    content_ids = st.multiselect("Content", [r.id for r in options.contents], key="g:content",
                                 persist_state=KEEP,
                                 format_func={r.id: r.name for r in options.contents}.get)
    style_ids = st.multiselect("Style", [r.id for r in options.styles], key="g:style",
                               persist_state=KEEP,
                               format_func={r.id: r.name for r in options.styles}.get)
    batch_ids = st.multiselect("Batch", [b.id for b in options.batches], key="g:batch",
                               persist_state=KEEP,
                               format_func={b.id: gallery.batch_label(b)
                                            for b in options.batches}.get)
    statuses = st.multiselect("Status", gallery.STATUSES, default=[gallery.JobStatus.DONE],
                              key="g:status", persist_state=KEEP,
                              help="Queued, running and failed jobs can be shown too.")
    people = st.multiselect("Queued by", options.people, key="g:people", persist_state=KEEP,
                            help="Who queued the job that made a result.")
    tags = st.multiselect("Tags", options.tags, key="g:tags", persist_state=KEEP)
    favourites_only = st.toggle("Favourites only", key="g:fav", persist_state=KEEP,
                                help="The results you starred (everyone has their own).")
    dates = st.date_input("Date", value=(), key="g:dates", persist_state=KEEP,
                          help="When the result was made: a day or a range of days.")
    with st.expander("Settings"):
        ranges, choices = setting_filters()

@st.fragment(run_every=gallery.REFRESH_SECONDS)
@outage_notice(retry=False)
def cards_grid(filters: dict) -> None:
    """The count, the ZIP, the order and the cards: refreshed as results arrive, keeping
    the filters (in the sidebar, outside) and the page."""
    count_box, sort_box, order_box, size_box = st.columns([2.5, 2, 1.5, 1],
                                                          vertical_alignment="bottom")
    sort = sort_box.selectbox("Sort by", list(gallery.SORTS), format_func=gallery.SORTS.get,
                              key="g:sort", persist_state=KEEP,
                              help="Date: when the result was made.")
    descending = order_box.toggle("Descending", value=True, key="g:desc", persist_state=KEEP)
    page_size = size_box.selectbox("Per page", gallery.PAGE_SIZES, index=1, key="g:size",
                                   persist_state=KEEP)
    try:
        query = gallery.gallery_filter(**filters, sort=sort, descending=descending,
                                       viewer=person())
    except gallery.InputError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    total = gallery.gallery_count(query)
    pages = max(1, -(-total // page_size))
    ids = gallery.result_ids(query)  # what the dialog pages through, across pages
    if (last := st.session_state.pop(LAST_RESULT, None)) in ids:
        st.session_state["g:page"] = ids.index(last) // page_size + 1  # where it was left
    if st.session_state.get("g:page", 1) > pages:
        st.session_state["g:page"] = pages
    picked = [i for i in st.session_state.get(PICKED, []) if i in ids]
    with count_box:
        st.caption(plural(total, "result") + (f" · {len(picked)} picked" if picked else ""))
        st.download_button(gallery.export_label(picked, total),
                           lambda: gallery.export_zip(query, picked),
                           file_name="nfx-gallery-selection.zip", mime="application/zip",
                           icon=":material/folder_zip:", on_click="ignore", disabled=not total,
                           key="gb:zip",
                           help="The PNGs of the picked results (tick them on their cards), or "
                                "of every matching result (all pages, up to "
                                f"{gallery.EXPORT_LIMIT}), and settings.csv, as "
                                "`nfx export` makes.")
    cards = gallery.gallery_cards(query, st.session_state.get("g:page", 1) - 1, page_size)
    if not cards:
        st.info("Nothing matches these filters yet. Queue a batch on *New batch*, "
                "or widen the filters.")
    for start in range(0, len(cards), COLUMNS):
        for column, card in zip(st.columns(COLUMNS), cards[start:start + COLUMNS]):
            with column.container(border=True):
                result_id = card.card.result_id
                if card.thumb:
                    thumbnail_button(result_id, card.label, card.thumb, f"g-{result_id}", ids,
                                     in_fragment=True)
                else:
                    st.progress(card.card.progress, text=card.card.status)
                st.caption(("★ " if card.card.favourite else "") + card.label)
                if card.owner:
                    st.caption(f":gray[{card.owner}]")
                if card.card.error:
                    st.caption(f":red[{card.card.error}]")
                if result_id:
                    st.checkbox("Pick for the ZIP", value=result_id in picked,
                                key=f"gb:pick:{result_id}", on_change=pick, args=(result_id,))
    if pages > 1:
        st.pagination(pages, key="g:page", persist_state=KEEP)


thumbnail_styles()
cards_grid(dict(content_ids=content_ids, style_ids=style_ids, batch_ids=batch_ids,
                statuses=statuses, tags=tags, favourites_only=favourites_only, dates=dates,
                people=people,
                ranges=ranges, choices=choices))
result_dialog_if_open()
