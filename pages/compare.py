"""Compare: results side by side with their differing settings, and a batch as an X/Y/Z grid."""

import streamlit as st

from nfx.app import compare
from pages._widgets import through_app_navigation

through_app_navigation()

BROWSE = 24  # thumbnails offered to pick from


def pick(result_id: int) -> None:
    chosen = st.session_state.get("c:results", [])
    if result_id not in chosen and len(chosen) < 4:
        st.session_state["c:results"] = chosen + [result_id]


def side_by_side() -> None:
    choices = compare.compare_choices()
    picked = st.multiselect("Results (2 to 4)", list(choices),
                            format_func=lambda i: choices[i].label, max_selections=4,
                            key="c:results", placeholder="Choose results to compare")
    with st.expander("Pick from thumbnails", expanded=len(picked) < 2):
        offered = list(choices.values())[:BROWSE]
        for start in range(0, len(offered), 6):  # one row of columns per 6, so rows align
            for cell, choice in zip(st.columns(6), offered[start:start + 6]):
                with cell:
                    st.image(compare.thumbnail(choice.thumb_sha256), width="stretch")
                    st.button("Add", key=f"c:pick:{choice.result_id}", on_click=pick,
                              args=(choice.result_id,), disabled=choice.result_id in picked,
                              width="stretch", type="tertiary", icon=":material/add:")
                    st.caption(choice.label)
    if len(picked) < 2:
        st.info("Pick two to four results, from the list or the thumbnails.")
        return
    comparison = compare.compare(picked)
    for column, record in zip(st.columns(max(len(picked), 3)), comparison.records):
        column.image(compare.image_bytes(record.image_sha256), width="stretch",
                     caption=choices[record.id].label if record.id in choices else None)
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


def axis_name(axis: str) -> str:
    return compare.field_label(axis) if axis else "—"


def batch_grid() -> None:
    batches = compare.batches_with_results()
    if not batches:
        st.info("No batch has results yet.")
        return
    labels = {b.id: compare.batch_label(b) for b in batches}
    batch_id = st.selectbox("Batch", list(labels), format_func=labels.get, key="c:batch")
    axes = compare.batch_axes(batch_id)
    optional = [compare.NO_AXIS] + axes.choices
    rows_box, columns_box, split_box, size_box = st.columns([2, 2, 2, 1.4])
    rows = rows_box.selectbox("Rows", axes.choices, index=axes.choices.index(axes.rows),
                              format_func=axis_name, key=f"c:rows:{batch_id}")
    columns = columns_box.selectbox("Columns", optional, index=optional.index(axes.columns),
                                    format_func=axis_name, key=f"c:cols:{batch_id}")
    split = split_box.selectbox("One grid per", optional, index=optional.index(axes.split),
                                format_func=axis_name, key=f"c:split:{batch_id}",
                                help="A third axis: one grid for each of its values.")
    cell = size_box.select_slider("Cell size", [128, 192, 256, 384], value=192, key="c:cell")
    shown = {rows, columns, split}
    hidden = [axis_name(a) for a in axes.varying if a not in shown]
    st.caption("Varies in this batch: "
               + (", ".join(axis_name(a) for a in axes.varying) or "nothing")
               + (f". Not on an axis: {', '.join(hidden)}; each cell shows the newest of those."
                  if hidden else ""))
    st.download_button("Download batch (ZIP)", lambda: compare.batch_zip(batch_id),
                       file_name=compare.batch_zip_name(batch_id), mime="application/zip",
                       icon=":material/folder_zip:", on_click="ignore",
                       help="Every result's PNG, named by the settings that vary, and "
                            "settings.csv: what `nfx export` makes.")
    try:
        sheets = compare.batch_grids(batch_id, rows, columns, split, cell_size=cell)
    except compare.InputError as exc:
        st.error(str(exc), icon=":material/error:")
        return
    for sheet in sheets:
        empty = f"; {compare.plural(sheet.empty, 'empty cell')}" if sheet.empty else ""
        st.caption(f"{sheet.title}: {compare.plural(sheet.shown, 'result')}{empty}")
        st.image(sheet.png, width="content")
    if len(sheets) == 1:
        st.download_button("Download grid (PNG)", sheets[0].png,
                           file_name=f"nfx-batch-{batch_id}-grid.png", mime="image/png",
                           icon=":material/download:", on_click="ignore")


st.title("Compare")
left, right = st.tabs(["Side by side", "Batch grid"])
with left:
    side_by_side()
with right:
    batch_grid()
