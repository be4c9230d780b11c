"""Compare: results side by side with their differing settings and an A/B wipe, and a batch
as an X/Y/Z grid whose cells open their result."""

import streamlit as st

from nfx.app import compare
from pages._widgets import (KEEP, result_dialog_if_open, through_app_navigation, thumbnail_button,
                            thumbnail_styles)

through_app_navigation()

BROWSE = 24  # thumbnails offered to pick from


def pick(result_id: int) -> None:
    chosen = st.session_state.get("c:results", [])
    if result_id not in chosen and len(chosen) < 4:
        st.session_state["c:results"] = chosen + [result_id]


def wipe(picked: list[int], choices: dict) -> None:
    """Two of the picked results under one another, and a slider between them."""
    st.subheader("A/B wipe")
    a_box, b_box = st.columns(2)
    first = a_box.selectbox("A", picked, format_func=lambda i: choices[i].label, key="c:wipe:a",
                            index=0)
    second = b_box.selectbox("B", picked, format_func=lambda i: choices[i].label,
                             key="c:wipe:b", index=1)
    if first == second:
        st.caption("Pick two different results for A and B.")
        return
    st.html(compare.wipe_html(first, second), unsafe_allow_javascript=True)
    st.caption("Drag the slider: left of the red line is A, right of it B.")


def side_by_side() -> None:
    choices = compare.compare_choices()
    picked = st.multiselect("Results (2 to 4)", list(choices),
                            format_func=lambda i: choices[i].label, max_selections=4,
                            key="c:results", placeholder="Choose results to compare",
                            persist_state=KEEP)
    picked = [i for i in picked if i in choices]
    with st.expander("Pick from thumbnails", expanded=len(picked) < 2):
        offered = list(choices.values())[:BROWSE]
        for start in range(0, len(offered), 6):  # one row of columns per 6, so rows align
            for cell, choice in zip(st.columns(6), offered[start:start + 6]):
                with cell:
                    st.image(compare.thumbnail(choice.thumb_sha256), width="stretch",
                             alt=choice.label)
                    st.button("Add", key=f"cb:pick:{choice.result_id}", on_click=pick,
                              args=(choice.result_id,), disabled=choice.result_id in picked,
                              width="stretch", type="tertiary", icon=":material/add:")
                    st.caption(choice.label)
    if len(picked) < 2:
        st.info("Pick two to four results, from the list or the thumbnails.")
        return
    comparison = compare.compare(picked)
    for column, record in zip(st.columns(max(len(picked), 3)), comparison.records):
        column.image(compare.image_bytes(record.image_sha256), width="stretch",
                     caption=choices[record.id].label if record.id in choices else None,
                     alt=choices[record.id].label if record.id in choices else None)
        column.caption(compare.settings_summary(record.settings, comparison.differing_fields))
    if comparison.differing:
        st.markdown("**Differs:** " + ", ".join(comparison.differing))
    else:
        st.markdown("**Same inputs and settings**; only the runs differ.")
    only = st.toggle("Only what differs", value=False, key="c:only")
    frame = comparison.frame
    shown = frame.loc[comparison.differing] if only else frame
    st.dataframe(shown.style.apply(
        lambda row: ["background-color: #fff3b0" if row.name in comparison.differing
                     else ""] * len(row), axis=1),
        width="stretch", height=38 + 35 * len(shown))
    wipe(picked, choices)


def axis_name(axis: str) -> str:
    return compare.field_label(axis) if axis else "—"


def axis_keys(batch_id: int) -> dict[str, str]:
    return {axis: f"c:{axis}:{batch_id}" for axis in compare.AXES}


def swap(batch_id: int, which: str) -> None:
    """Axis picker callback: an axis already in use swaps places instead of being refused."""
    keys = axis_keys(batch_id)
    before = st.session_state.get(f"c:axes:{batch_id}", {})
    now = {axis: st.session_state.get(key, "") for axis, key in keys.items()}
    after = compare.swap_axes(now, which, now[which], {**now, **before})
    for axis, key in keys.items():
        st.session_state[key] = after[axis]
    st.session_state[f"c:axes:{batch_id}"] = after


PAGE_WIDTH = 1120  # px the wide layout gives the main column at a 1280 px window
LABEL_WIDTH = 140


def grid_part(part, rows: str, columns: str, ids: list[int], cell: int) -> None:
    """One grid as clickable cells of about `cell` px: a header row, then a row per value."""
    st.caption(f"{part.title}: {compare.plural(part.shown, 'result')}"
               + (f"; {compare.plural(part.empty, 'empty cell')}" if part.empty else ""))
    room = PAGE_WIDTH - LABEL_WIDTH - cell * len(part.columns)
    widths = [LABEL_WIDTH] + [cell] * len(part.columns) + ([room] if room > 0 else [])
    header = st.columns(widths)
    header[0].markdown(f"**{axis_name(rows)}** ↓ · **{axis_name(columns)}** →"
                       if columns else f"**{axis_name(rows)}** ↓")
    for column, value in zip(header[1:], part.columns):
        column.markdown(f"**{value}**" if value else "")
    for r, value in enumerate(part.rows):
        line = st.columns(widths, vertical_alignment="center")
        line[0].markdown(f"**{value}**")
        for c, column in enumerate(line[1:1 + len(part.columns)]):
            with column:
                found = part.cells.get((r, c))
                if found is None:
                    st.markdown(f":gray[{part.notes.get((r, c), 'not in this batch')}]")
                else:
                    thumbnail_button(found.result_id, found.label, found.thumb,
                                     f"c-{found.result_id}", ids)


def batch_grid() -> None:
    batches = compare.batches_with_results()
    if not batches:
        st.info("No batch has results yet.")
        return
    labels = {b.id: compare.batch_label(b) for b in batches}
    batch_id = st.selectbox("Batch", list(labels), format_func=labels.get, key="c:batch",
                            persist_state=KEEP)
    axes = compare.batch_axes(batch_id)
    keys = axis_keys(batch_id)
    for axis, default in (("rows", axes.rows), ("columns", axes.columns),
                          ("split", axes.split)):
        st.session_state.setdefault(keys[axis], default)
    st.session_state.setdefault(f"c:axes:{batch_id}",
                                {a: st.session_state[k] for a, k in keys.items()})
    optional = [compare.NO_AXIS] + axes.choices
    rows_box, columns_box, split_box, size_box = st.columns([2, 2, 2, 1.4])
    rows = rows_box.selectbox("Rows", axes.choices, format_func=axis_name, key=keys["rows"],
                              persist_state=KEEP,
                              on_change=swap, args=(batch_id, "rows"))
    columns = columns_box.selectbox("Columns", optional, format_func=axis_name,
                                    key=keys["columns"], persist_state=KEEP, on_change=swap,
                                    args=(batch_id, "columns"))
    split = split_box.selectbox("One grid per", optional, format_func=axis_name,
                                key=keys["split"], persist_state=KEEP, on_change=swap,
                                args=(batch_id, "split"),
                                help="A third axis: one grid for each of its values.")
    cell = size_box.select_slider("Cell size", [128, 192, 256, 384], value=192, key="c:cell",
                                  persist_state=KEEP)
    shown = {rows, columns, split}
    hidden = [axis_name(a) for a in axes.varying if a not in shown]
    st.caption("Varies in this batch: "
               + (", ".join(axis_name(a) for a in axes.varying) or "nothing")
               + (f". Not on an axis: {', '.join(hidden)}; each cell shows the newest of those"
                  if hidden else "") + ". Click a cell to open its result.")
    try:
        parts = compare.batch_parts(batch_id, rows, columns, split)
    except compare.InputError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    zip_box, png_box = st.columns(2)
    zip_box.download_button("Download batch (ZIP)", lambda: compare.batch_zip(batch_id),
                            file_name=compare.batch_zip_name(batch_id),
                            mime="application/zip", icon=":material/folder_zip:",
                            on_click="ignore", width="stretch",
                            help="Every result's PNG, named by its label and the settings "
                                 "that vary, and settings.csv: what `nfx export` makes.")
    png_box.download_button("Download grid (PNG)",
                            lambda: compare.grid_png(batch_id, rows, columns, split, cell),
                            file_name=compare.grid_file_name(batch_id), mime="image/png",
                            icon=":material/download:", on_click="ignore", width="stretch",
                            help="The grid as one labelled PNG (a split grid's parts one under "
                                 "another).")
    ids = [c.result_id for part in parts for c in part.cells.values()]
    for part in parts:
        grid_part(part, rows, columns, ids, cell)


st.title("Compare")
thumbnail_styles()
left, right = st.tabs(["Side by side", "Batch grid"])
with left:
    side_by_side()
with right:
    batch_grid()
result_dialog_if_open()
