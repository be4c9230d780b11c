"""Compare: results side by side with their differing settings, and a batch as a grid."""

import streamlit as st

from nfx import services
from pages._widgets import through_app_navigation

through_app_navigation()

st.title("Compare")
side_by_side, batch_grid = st.tabs(["Side by side", "Batch grid"])

with side_by_side:
    choices = services.compare_choices()
    picked = st.multiselect("Results (2 to 4)", list(choices), format_func=choices.get,
                            max_selections=4, key="c:results",
                            placeholder="Choose results to compare")
    if len(picked) < 2:
        st.info("Pick two to four results; open the gallery to find their numbers.")
    else:
        comparison = services.compare(picked)
        for column, record in zip(st.columns(max(len(picked), 3)), comparison.records):
            column.image(services.image_bytes(record.image_sha256), width="stretch",
                         caption=services.result_label(record))
            column.caption(services.settings_summary(record.settings,
                                                     comparison.differing_fields))
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

with batch_grid:
    batches = services.batches_with_results()
    if not batches:
        st.info("No batch has results yet.")
    else:
        labels = {b.id: services.batch_label(b) for b in batches}
        batch_id = st.selectbox("Batch", list(labels), format_func=labels.get, key="c:batch")
        axes = services.batch_axes(batch_id)
        rows_box, columns_box, size_box = st.columns([2, 2, 1])
        row_axis = rows_box.selectbox("Rows", axes, format_func=services.field_label,
                                      key=f"c:rows:{batch_id}")
        column_axis = columns_box.selectbox("Columns", axes, index=min(1, len(axes) - 1),
                                            format_func=services.field_label,
                                            key=f"c:cols:{batch_id}")
        cell = size_box.select_slider("Cell size", [128, 192, 256, 384], value=192, key="c:cell")
        try:
            sheet, shown = services.batch_grid(batch_id, row_axis, column_axis, cell_size=cell)
        except services.NFXError as exc:
            st.info(str(exc))
            st.stop()
        st.caption(f"{services.plural(shown, 'result')}; where other settings also vary, "
                   "each cell shows the newest.")
        st.image(sheet, width="content")
        st.download_button("Download grid (PNG)", sheet, file_name=f"nfx-batch-{batch_id}.png",
                           mime="image/png", icon=":material/download:", on_click="ignore")
