"""Widgets shared by several pages, generated from `nfx.settings.FIELDS`.

Not a page (the leading underscore keeps it out of navigation). Every settings widget comes
from a FieldSpec, so a new setting appears in the app without touching any page.
"""

from __future__ import annotations

import math
import runpy
from pathlib import Path
from typing import Any

import streamlit as st

from nfx import services
from nfx.settings import FieldSpec, Settings


ENTRY_SCRIPT = Path(__file__).resolve().parents[1] / "streamlit_app.py"
NAVIGATED = "nfx:navigated"  # set by streamlit_app.py on every run


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


def _float_step(value: float) -> float:
    """A step one decade below the value, so +/- moves it by about 10%."""
    if not value:
        return 0.1
    return float(10.0 ** (math.floor(math.log10(abs(value))) - 1))


def _help(spec: FieldSpec) -> str:
    shown = spec.describe_range()
    return spec.help + (f"  \nRange: {shown}" if shown else "")


def setting_input(spec: FieldSpec, value: Any, key: str) -> Any:
    """One widget for one setting, typed by its FieldSpec; returns the widget's value."""
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
    return st.text_input(label, value=spec.format(value), help=help_text + "  \nComma-separated.",
                         key=key)


def settings_inputs(key: str, base: Settings, *, sweepable: bool = False,
                    columns: int = 3) -> tuple[dict[str, Any], dict[str, str]]:
    """Tabs of settings widgets, one tab per FieldSpec group.

    Returns (values by name, sweep texts by name). With sweepable=True a multiselect picks
    settings that take a comma-separated list of values instead of one value."""
    swept: list[str] = []
    if sweepable:
        swept = st.multiselect(
            "Sweep these settings", services.sweepable_fields(),
            format_func=services.field_label, key=f"{key}:sweep",
            help="Each chosen setting takes a comma-separated list of values; the batch runs "
                 "every combination.")
    values: dict[str, Any] = {}
    sweeps: dict[str, str] = {}
    groups = services.settings_groups()
    for tab, (group, specs) in zip(st.tabs(list(groups)), groups.items()):
        with tab:
            cells = st.columns(columns)
            for i, spec in enumerate(specs):
                current = getattr(base, spec.name)
                with cells[i % columns]:
                    if spec.name in swept:
                        sweeps[spec.name] = st.text_input(
                            f"{spec.label} (sweep)", value=spec.format(current),
                            help=_help(spec) + "  \nSweep: comma-separated values, one job each.",
                            key=f"{key}:{spec.name}:values")
                    else:
                        values[spec.name] = setting_input(spec, current, f"{key}:{spec.name}")
    return values, sweeps


def add_samples_button() -> int | None:
    """The built-in samples, one click away on a fresh install; how many were new, or None
    while not clicked."""
    if st.button("Add sample images", icon=":material/add_photo_alternate:",
                 help="Two content pictures and four painterly styles, drawn by NFX itself."):
        return services.add_sample_images()
    return None


# --- the result dialog (gallery, home) ----------------------------------------------------

OPEN_RESULT = "open_result"


def open_result(result_id: int) -> None:
    """Button callback: the dialog stays open across reruns until dismissed."""
    st.session_state[OPEN_RESULT] = result_id


def close_result() -> None:
    st.session_state.pop(OPEN_RESULT, None)


def result_dialog_if_open() -> None:
    if st.session_state.get(OPEN_RESULT):
        result_dialog(st.session_state[OPEN_RESULT])


@st.dialog("Result", width="large", on_dismiss=close_result)
def result_dialog(result_id: int) -> None:
    """Everything about one result, and what you can do with it."""
    record = services.result(result_id)
    image_col, info_col = st.columns([3, 2])
    with image_col:
        st.image(services.image_bytes(record.image_sha256), width="stretch",
                 caption=f"{services.result_label(record)} · {record.width}×{record.height}")
    with info_col:
        inputs = st.columns(1 + len(record.styles))
        inputs[0].image(services.thumbnail(record.content.sha256), caption="content",
                        width="stretch")
        for column, style in zip(inputs[1:], record.styles):
            column.image(services.thumbnail(style.sha256), caption="style", width="stretch")
        st.caption(f"{record.seconds:.1f} s on {record.device} ({record.precision}) · "
                   f"{record.created_at:%Y-%m-%d %H:%M}")
        st.download_button("Download PNG", services.result_png(result_id), width="stretch",
                           file_name=f"nfx-{result_id}.png", mime="image/png",
                           icon=":material/download:", on_click="ignore",
                           help="The PNG carries its settings: `python -m nfx rerun` reads them.")
        st.toggle("Favourite", value=record.favourite, key=f"fav:{result_id}",
                  on_change=lambda: services.set_favourite(
                      result_id, st.session_state[f"fav:{result_id}"]))
        st.multiselect("Tags", sorted(set(services.all_tags()) | set(record.tags)),
                       default=list(record.tags), accept_new_options=True,
                       key=f"tags:{result_id}",
                       on_change=lambda: services.set_tags(
                           result_id, st.session_state[f"tags:{result_id}"]))
        if st.button("Delete result", icon=":material/delete:", type="tertiary"):
            services.delete_result(result_id)
            close_result()
            st.rerun()
    history = services.history_frame(record)
    if not history.empty:
        st.line_chart(history, x_label="iteration", y_label="loss ÷ its maximum", height=220)
        st.caption("Final losses: " + ", ".join(f"{term} {value:.4g}"
                                                for term, value in record.losses.items()))
    with st.expander("Settings"):
        st.dataframe(services.settings_frame(record.settings), width="stretch")
    with st.expander("Re-run with changes", expanded=False):
        values, _ = settings_inputs(f"rerun:{result_id}", record.settings)
        if st.button("Queue re-run", type="primary", icon=":material/replay:"):
            try:
                job = services.rerun(result_id, values)
            except services.NFXError as exc:
                st.error(str(exc))
            else:
                st.success(f"Queued job #{job.id}; follow it on the Queue page.")
