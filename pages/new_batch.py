"""New batch: pick or upload images, set or sweep settings, preview the jobs, queue them."""

import streamlit as st

from nfx import services
from nfx.settings import Settings
from pages._widgets import add_samples_button, settings_inputs, through_app_navigation

through_app_navigation()

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]


def ingest_uploads(role: str) -> None:
    """Uploader callback: store the files, select them, report bad ones, empty the uploader."""
    uploader = f"nb:{role}:upload:{st.session_state.get(f'nb:{role}:n', 0)}"
    files = st.session_state.get(uploader) or []
    added, errors = services.add_uploads(((f.name, f.getvalue()) for f in files), role)
    selected = st.session_state.get(f"nb:{role}", [])
    st.session_state[f"nb:{role}"] = selected + [r.id for r in added if r.id not in selected]
    st.session_state[f"nb:{role}:errors"] = errors
    st.session_state[f"nb:{role}:n"] = st.session_state.get(f"nb:{role}:n", 0) + 1


def image_picker(role: str, title: str) -> list[int]:
    records = services.library(role)
    names = {r.id: services.image_label(r) for r in records}
    with st.container(border=True):
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
                thumbs[i].image(services.thumbnail(by_id[image_id].sha256), width="stretch")
    return chosen


st.title("New batch")
st.caption("Every chosen content image is stylised with every chosen style, once for each "
           "combination of swept values.")
if not any(services.library_counts().values()):
    if add_samples_button() is not None:
        st.rerun()

left, right = st.columns(2)
with left:
    content_ids = image_picker("content", "Content images")
with right:
    style_ids = image_picker("style", "Style images")

st.subheader("Settings")
values, sweep_texts = settings_inputs("nb", Settings(), sweepable=True)

st.subheader("Jobs")
try:
    base = services.build_settings(values)
    sweep = services.parse_sweeps(sweep_texts)
except services.InputError as exc:
    st.error(str(exc))
    base = sweep = None

if base is not None:
    plan = services.plan_frame(content_ids, style_ids, base, sweep)
    estimate_text, measured = services.estimate_text(plan["estimate (s)"].sum())
    count, estimate, name_box = st.columns([1, 1, 2], vertical_alignment="bottom")
    count.metric("Jobs", len(plan))
    estimate.metric("Estimated time", estimate_text,
                    help=("From this machine's measured speed (a worker measures it when it "
                          "starts, and finished jobs refine it)." if measured else
                          "A rough guess: no worker has measured this machine's speed yet."))
    name = name_box.text_input("Batch name", placeholder="optional", key="nb:name")
    if len(plan):
        st.dataframe(plan, hide_index=True, width="stretch", height=min(38 + 35 * len(plan), 300))
    else:
        st.info("Choose at least one content and one style image to see the jobs.")
    if st.button("Queue batch", type="primary", icon=":material/playlist_add:",
                 disabled=not len(plan)):
        try:
            batch = services.queue_batch(content_ids, style_ids, base, sweep, name)
        except services.NFXError as exc:
            st.error(str(exc))
        else:
            reused = f", {batch.reused_count} already done" if batch.reused_count else ""
            st.success(f"Queued batch #{batch.id}: {services.plural(batch.job_count, 'job')}"
                       f"{reused}.")
            st.page_link("pages/queue.py", label="Watch it on the Queue page",
                         icon=":material/arrow_forward:")
