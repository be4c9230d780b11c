"""Widgets shared by several pages: settings forms generated from FIELDS, clickable
thumbnails, and the result dialog.

Not a page (the leading underscore keeps it out of navigation). Every settings widget comes
from a FieldSpec (through `nfx.app.forms`), so a new setting appears in the app without
touching any page.
"""

from __future__ import annotations

import math
import runpy
from pathlib import Path
from typing import Any

import streamlit as st

from nfx.app import forms, new_batch, result as view
from nfx.app.context import data_url

ENTRY_SCRIPT = Path(__file__).resolve().parents[1] / "streamlit_app.py"
NAVIGATED = "nfx:navigated"  # set by streamlit_app.py on every run
THUMB_CSS = """<style>
[class*="st-key-thumb-"] button {padding: 0; border: none; background: none;}
[class*="st-key-thumb-"] button, [class*="st-key-thumb-"] button * {width: 100%;}
[class*="st-key-thumb-"] button:hover {outline: 2px solid #ff4b4b;}
[class*="st-key-thumb-"] button img {max-height: none !important; height: auto !important;
  width: 100% !important; max-width: none !important; object-fit: contain !important;
  border-radius: 0.4rem; display: block;}
[class*="st-key-thumb-"] button p {margin: 0;}
</style>"""


def through_app_navigation() -> None:
    """Make sure this page runs inside streamlit_app.py's st.navigation.

    With a `pages/` folder beside the entry script, a Streamlit server whose first session
    opens on a sub-page URL starts in its old multipage mode: it runs pages/*.py on their own,
    without st.navigation or the page config. Then run the entry script here instead: its
    st.navigation switches the server to the new mode for good and runs this page properly."""
    if st.session_state.get(NAVIGATED):
        return
    runpy.run_path(str(ENTRY_SCRIPT))
    st.stop()


# --- settings forms -----------------------------------------------------------------------


def _float_step(value: float) -> float:
    """A step one decade below the value, so +/- moves it by about 10%."""
    if not value:
        return 0.1
    return float(10.0 ** (math.floor(math.log10(abs(value))) - 1))


def _help(spec: forms.FieldSpec) -> str:
    shown = spec.describe_range()
    return spec.help + (f"  \nRange: {shown}" if shown else "")


def setting_input(spec: forms.FieldSpec, value: Any, key: str) -> Any:
    """One widget for one setting, typed by its FieldSpec; returns the widget's value.
    A list setting is a text box, checked right under it."""
    label, help_text = spec.label, _help(spec)
    if spec.kind == "int":
        return st.number_input(label, min_value=int(spec.minimum), max_value=int(spec.maximum),
                               value=int(value), step=1, help=help_text, key=key)
    if spec.kind == "float":
        return st.number_input(label, min_value=float(spec.minimum),
                               max_value=float(spec.maximum), value=float(value),
                               step=_float_step(float(value)), format="%g", help=help_text,
                               key=key)
    if spec.kind == "choice":
        return st.selectbox(label, spec.choices, index=spec.choices.index(value),
                            help=help_text, key=key)
    text = st.text_input(label, value=spec.format(value), help=help_text + "  \nComma-separated.",
                         key=key)
    field_error(forms.field_error(spec.name, text, sweep=False))
    return text


def field_error(message: str | None) -> None:
    if message:
        st.error(message, icon=":material/error:")


def settings_inputs(key: str, base: forms.Settings, *, sweepable: bool = False,
                    columns: int = 3) -> tuple[dict[str, Any], dict[str, str]]:
    """Tabs of settings widgets, one tab per FieldSpec group.

    Returns (values by name, sweep texts by name). With sweepable=True a multiselect picks
    settings that take several values instead of one; a bad value is reported under its box."""
    swept: list[str] = []
    if sweepable:
        swept = st.multiselect(
            "Sweep these settings", forms.sweepable_fields(),
            format_func=forms.field_label, key=f"{key}:sweep",
            help="Each chosen setting takes several values, separated by commas; the batch "
                 "runs every combination.")
    values: dict[str, Any] = {}
    sweeps: dict[str, str] = {}
    groups = forms.settings_groups()
    for tab, (group, specs) in zip(st.tabs(list(groups)), groups.items()):
        with tab:
            cells = st.columns(columns)
            for i, spec in enumerate(specs):
                current = getattr(base, spec.name)
                with cells[i % columns]:
                    if spec.name in swept:
                        sweeps[spec.name] = st.text_input(
                            f"{spec.label} (sweep)", value=spec.format(current),
                            help=_help(spec) + "  \nSeveral values, separated by commas: one "
                                               "job each.",
                            key=f"{key}:{spec.name}:values")
                        field_error(forms.field_error(spec.name, sweeps[spec.name], sweep=True))
                    else:
                        values[spec.name] = setting_input(spec, current, f"{key}:{spec.name}")
    return values, sweeps


def sample_previews(per_row: int = 6) -> None:
    """The built-in samples, shown before they are added (a fresh install)."""
    samples = new_batch.sample_previews()
    for start in range(0, len(samples), per_row):
        for column, (name, role, jpeg) in zip(st.columns(per_row), samples[start:start + per_row]):
            column.image(jpeg, caption=f"{name.rsplit('.', 1)[0]} ({role})", width="stretch")


def add_samples_button() -> int | None:
    """The built-in samples, one click away; how many were new, or None while not clicked."""
    if st.button("Add sample images", icon=":material/add_photo_alternate:",
                 help="Two content pictures and four painterly styles, drawn by NFX itself."):
        return new_batch.add_sample_images()
    return None


# --- clickable thumbnails and the result dialog ---------------------------------------------

OPEN_RESULT = "open_result"
RESULT_LIST = "open_result:list"  # the ids the dialog pages through


def open_result(result_id: int, ids: list[int] | None = None) -> None:
    """Callback: the dialog stays open across reruns until dismissed."""
    st.session_state[OPEN_RESULT] = result_id
    st.session_state[RESULT_LIST] = list(ids or [result_id])


def close_result() -> None:
    st.session_state.pop(OPEN_RESULT, None)


def thumbnail_styles() -> None:
    """Once per page that shows thumbnail buttons: make their pictures fill the button."""
    st.html(THUMB_CSS)


def thumbnail_button(card, key: str, ids: list[int]) -> None:
    """A result's thumbnail that opens it: a button whose label is the picture."""
    ref = card.label.split(" · ", 1)[0]
    st.button(f"![{ref}]({data_url(card.thumb)})", key=f"thumb-{key}",
              on_click=open_result, args=(card.card.result_id, ids), width="stretch")


def result_dialog_if_open() -> None:
    if st.session_state.get(OPEN_RESULT):
        result_dialog(st.session_state[OPEN_RESULT])


def _go(result_id: int) -> None:
    st.session_state[OPEN_RESULT] = result_id
    st.rerun()


@st.dialog("Result", width="large", on_dismiss=close_result)
def result_dialog(result_id: int) -> None:
    """Everything about one result, what you can do with it, and its neighbours."""
    try:
        record = view.result(result_id)
    except view.InputError as exc:
        st.info(str(exc))
        return
    before, after = view.neighbours(result_id, st.session_state.get(RESULT_LIST, []))
    back, title, forward = st.columns([1.3, 6, 1.3], vertical_alignment="center")
    if back.button("Previous", icon=":material/chevron_left:", key="dlg:prev",
                   disabled=before is None, width="stretch"):
        _go(before)
    title.markdown(f"**{view.label(record)}**")
    if forward.button("Next", icon=":material/chevron_right:", key="dlg:next",
                      disabled=after is None, width="stretch"):
        _go(after)
    image_col, info_col = st.columns([3, 2])
    with image_col:
        st.image(view.image_bytes(record.image_sha256), width="stretch",
                 caption=view.caption(record))
    with info_col:
        inputs = st.columns(1 + len(record.styles))
        inputs[0].image(view.thumbnail(record.content.sha256), caption="content",
                        width="stretch")
        for column, style in zip(inputs[1:], record.styles):
            column.image(view.thumbnail(style.sha256), caption="style", width="stretch")
        st.download_button("Download PNG", view.result_png(result_id), width="stretch",
                           file_name=view.png_file_name(record), mime="image/png",
                           icon=":material/download:", on_click="ignore",
                           help="The PNG carries its settings and inputs: drop it on "
                                "*PNG info* to queue it again.")
        st.toggle("Favourite", value=record.favourite, key=f"fav:{result_id}",
                  on_change=lambda: view.set_favourite(
                      result_id, st.session_state[f"fav:{result_id}"]))
        st.multiselect("Tags", sorted(set(view.all_tags()) | set(record.tags)),
                       default=list(record.tags), accept_new_options=True,
                       key=f"tags:{result_id}",
                       on_change=lambda: view.set_tags(
                           result_id, st.session_state[f"tags:{result_id}"]))
        delete_with_confirmation(result_id)
    loss = view.history_chart(record)
    if loss.chart is not None:
        st.altair_chart(loss.chart, width="stretch")
        notes = ["Final losses: " + ", ".join(f"{term} {value:.4g}"
                                              for term, value in record.losses.items())]
        if loss.scale_starts:
            notes.append("dashed lines: a finer scale starts")
        if loss.clipped:
            notes.append(f"{loss.clipped} line-search spikes run off the top")
        st.caption(" · ".join(notes))
    with st.expander("Settings"):
        st.dataframe(view.settings_frame(record.settings), width="stretch")
    with st.expander("Re-run with changes", expanded=False):
        values, _ = settings_inputs(f"rerun:{result_id}", record.settings)
        if st.button("Queue re-run", type="primary", icon=":material/replay:"):
            try:
                job = view.rerun(result_id, values)
            except view.InputError as exc:
                st.error(str(exc))
            else:
                st.success(view.rerun_message(job))


def delete_with_confirmation(result_id: int) -> None:
    """Delete asks first and says what goes with the result."""
    asking = f"delete:{result_id}"
    if not st.session_state.get(asking):
        if st.button("Delete result…", icon=":material/delete:", type="tertiary",
                     key=f"dlg:delete:{result_id}"):
            st.session_state[asking] = True
            st.rerun()
        return
    st.warning(view.delete_summary(result_id), icon=":material/warning:")
    yes, no = st.columns(2)
    if yes.button("Delete for good", type="primary", key=f"dlg:delete-yes:{result_id}"):
        view.delete_result(result_id)
        st.session_state.pop(asking, None)
        ids = [i for i in st.session_state.get(RESULT_LIST, []) if i != result_id]
        st.session_state[RESULT_LIST] = ids
        close_result()
        st.toast("Result deleted.", icon=":material/delete:")
        st.rerun()
    if no.button("Keep it", key=f"dlg:delete-no:{result_id}"):
        st.session_state.pop(asking, None)
        st.rerun()
