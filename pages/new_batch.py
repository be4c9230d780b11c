"""New batch: pick or upload images, add style mixes, set or sweep settings, preview the jobs,
queue them."""

import streamlit as st

from nfx.app import forms, new_batch
from pages._widgets import (add_samples_button, field_error, sample_previews, settings_inputs,
                            through_app_navigation)

through_app_navigation()

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
MIXES = "nb:mixes"  # [(style ids, blend weights)], the style mixes of this batch


def ingest_uploads(role: str) -> None:
    """Uploader callback: store the files, select them, report bad ones, empty the uploader."""
    uploader = f"nb:{role}:upload:{st.session_state.get(f'nb:{role}:n', 0)}"
    files = st.session_state.get(uploader) or []
    added, errors = new_batch.add_uploads(((f.name, f.getvalue()) for f in files), role)
    selected = st.session_state.get(f"nb:{role}", [])
    st.session_state[f"nb:{role}"] = selected + [r.id for r in added if r.id not in selected]
    st.session_state[f"nb:{role}:errors"] = errors
    st.session_state[f"nb:{role}:n"] = st.session_state.get(f"nb:{role}:n", 0) + 1


def image_picker(role: str, title: str, records: list) -> list[int]:
    names = {r.id: new_batch.image_label(r) for r in records}
    st.subheader(title)
    chosen = st.multiselect(f"{title} from the library", list(names), key=f"nb:{role}",
                            format_func=names.get, placeholder="Choose images")
    st.file_uploader(f"Upload {title.lower()}", type=IMAGE_TYPES, accept_multiple_files=True,
                     key=f"nb:{role}:upload:{st.session_state.get(f'nb:{role}:n', 0)}",
                     on_change=ingest_uploads, args=(role,),
                     help="Several at once is fine; each is stored once, by content.")
    for error in st.session_state.get(f"nb:{role}:errors", []):
        st.error(error)
    if chosen:
        thumbs = st.columns(6)
        by_id = {r.id: r for r in records}
        for i, image_id in enumerate(chosen[:6]):
            thumbs[i].image(new_batch.thumbnail(by_id[image_id].sha256), width="stretch")
    return chosen


def add_mix() -> None:
    """Button callback: the picked styles and weights become one entry of the style axis."""
    try:
        entry = new_batch.parse_mix(st.session_state.get("nb:mix:styles", []),
                                    st.session_state.get("nb:mix:weights", ""))
    except new_batch.InputError as exc:
        st.session_state["nb:mix:error"] = str(exc)
        return
    st.session_state["nb:mix:error"] = None
    st.session_state[MIXES] = st.session_state.get(MIXES, []) + [entry]
    st.session_state["nb:mix:styles"] = []
    st.session_state["nb:mix:weights"] = ""


def remove_mix(index: int) -> None:
    mixes = list(st.session_state.get(MIXES, []))
    mixes.pop(index)
    st.session_state[MIXES] = mixes


def style_mixes(records: list) -> list:
    names = {r.id: r.name for r in records}
    with st.expander("Style mixes: several styles blended in one job"):
        pick, weights, add = st.columns([3, 2, 1], vertical_alignment="bottom")
        pick.multiselect("Styles to blend", list(names), format_func=names.get,
                         key="nb:mix:styles", placeholder="Two or more styles")
        weights.text_input("Blend weights", key="nb:mix:weights", placeholder="e.g. 0.7, 0.3",
                           help="One weight per style, in the order picked; empty means equal.")
        add.button("Add mix", on_click=add_mix, icon=":material/add:", key="nb:mix:add")
        field_error(st.session_state.get("nb:mix:error"))
        mixes = st.session_state.get(MIXES, [])
        for i, entry in enumerate(mixes):
            text, remove = st.columns([5, 1], vertical_alignment="center")
            text.markdown(f"Mix: **{entry.label(names)}**")
            remove.button("Remove", key=f"nb:mix:remove:{i}", on_click=remove_mix, args=(i,))
    return mixes


st.title("New batch")
st.caption("Every chosen content image is stylised with every chosen style (and style mix), "
           "once for each combination of swept values.")
if not any(new_batch.library_counts().values()):
    sample_previews()
    if add_samples_button() is not None:
        st.rerun()

left, right = st.columns(2)
with left, st.container(border=True):
    content_ids = image_picker("content", "Content images", new_batch.library("content"))
with right, st.container(border=True):
    style_records = new_batch.library("style")
    style_ids = image_picker("style", "Style images", style_records)
    mixes = style_mixes(style_records)
entries = [new_batch.StyleEntry((i,)) for i in style_ids] + mixes

st.subheader("Settings")
values, sweep_texts = settings_inputs("nb", forms.default_settings(), sweepable=True)

st.subheader("Jobs")
form = forms.check_form(values, sweep_texts)
if form.ok:
    plan = new_batch.plan_frame(content_ids, entries, form.base, form.sweep)
    jobs, total = str(len(plan)), new_batch.estimate_range(plan["estimate (s)"].sum())
else:
    plan, jobs, total = None, "—", "—"
_, measured = new_batch.work_model()
count, estimate, name_box = st.columns([1, 1, 2], vertical_alignment="bottom")
count.metric("Jobs", jobs)
estimate.metric("Estimated time", total, help=new_batch.estimate_help(measured))
name = name_box.text_input("Batch name", placeholder="optional", key="nb:name")
if plan is None:
    st.warning(form.summary(), icon=":material/block:")
elif len(plan):
    st.dataframe(plan, hide_index=True, width="stretch", height=min(38 + 35 * len(plan), 300))
else:
    st.info("Choose at least one content and one style image (or mix) to see the jobs.")
if st.button("Queue batch", type="primary", icon=":material/playlist_add:",
             disabled=plan is None or not len(plan)):
    try:
        batch = new_batch.queue_batch(content_ids, entries, form.base, form.sweep, name)
    except new_batch.InputError as exc:
        st.error(str(exc))
    else:
        st.success(new_batch.queued_message(batch))
        st.page_link("pages/queue.py", label="Watch it on the Queue page",
                     icon=":material/arrow_forward:")
