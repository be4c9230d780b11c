"""New batch: pick or upload images, add style mixes, set or sweep settings, preview the jobs,
queue them. The form keeps its state for the session (persist_state)."""

import streamlit as st

from nfx.app import forms, masks, new_batch, previews
from pages._regions import regions_panel
from pages._widgets import (outage_notice, FORM, KEEP, MIXES, add_samples_button, field_error,
                            person, sample_previews, settings_inputs, through_app_navigation)

through_app_navigation()

IMAGE_TYPES = ["png", "jpg", "jpeg", "webp", "bmp", "gif", "tif", "tiff"]
TOKEN = f"{FORM}:token"  # this session's form: with the plan, it names a submission
QUEUED = f"{FORM}:queued"  # the message of the last queueing, shown until the plan changes


def errors_key(role: str) -> str:
    return f"{FORM}:{role}:errors"


def clear_errors(role: str) -> None:
    """A refused upload's error goes once its picker is used again."""
    st.session_state[errors_key(role)] = []


def ingest_uploads(role: str) -> None:
    """Uploader callback: store the files, select them, report bad ones, empty the uploader."""
    uploader = f"{FORM}:{role}:upload:{st.session_state.get(f'{FORM}:{role}:n', 0)}"
    files = st.session_state.get(uploader) or []
    added, errors = new_batch.add_uploads(((f.name, f.getvalue()) for f in files), role)
    selected = st.session_state.get(f"{FORM}:{role}", [])
    st.session_state[f"{FORM}:{role}"] = selected + [r.id for r in added if r.id not in selected]
    st.session_state[errors_key(role)] = errors
    st.session_state[f"{FORM}:{role}:n"] = st.session_state.get(f"{FORM}:{role}:n", 0) + 1


def image_picker(role: str, title: str, records: list) -> list[int]:
    names = {r.id: new_batch.image_label(r) for r in records}
    key = f"{FORM}:{role}"
    if key in st.session_state:  # a kept pick of an image deleted meanwhile is dropped
        st.session_state[key] = [i for i in st.session_state[key] if i in names]
    st.subheader(title)
    chosen = st.multiselect(f"{title} from the library", list(names), key=key,
                            format_func=names.get, placeholder="Choose images",
                            on_change=clear_errors, args=(role,), persist_state=KEEP)
    st.file_uploader(f"Upload {title.lower()}", type=IMAGE_TYPES, accept_multiple_files=True,
                     key=f"{FORM}:{role}:upload:{st.session_state.get(f'{FORM}:{role}:n', 0)}",
                     on_change=ingest_uploads, args=(role,),
                     help="Several at once is fine; each is stored once, by content.")
    for error in st.session_state.get(errors_key(role), []):
        st.error(error)
    if chosen:
        thumbs = st.columns(6)
        by_id = {r.id: r for r in records}
        for i, image_id in enumerate(chosen[:6]):
            thumbs[i].image(new_batch.thumbnail(by_id[image_id].sha256), width="stretch",
                            alt=by_id[image_id].name)
        if len(chosen) > 6:
            st.caption(f"…and {len(chosen) - 6} more")
    return chosen


def add_mix() -> None:
    """Button callback: the picked styles and weights become one entry of the style axis."""
    try:
        entry = new_batch.parse_mix(st.session_state.get(f"{FORM}:mix:styles", []),
                                    st.session_state.get(f"{FORM}:mix:weights", ""))
    except new_batch.InputError as exc:
        st.session_state[f"{FORM}:mix:error"] = str(exc)
        return
    st.session_state[f"{FORM}:mix:error"] = None
    st.session_state[MIXES] = st.session_state.get(MIXES, []) + [entry]
    st.session_state[f"{FORM}:mix:styles"] = []
    st.session_state[f"{FORM}:mix:weights"] = ""


def remove_mix(index: int) -> None:
    mixes = list(st.session_state.get(MIXES, []))
    mixes.pop(index)
    st.session_state[MIXES] = mixes


def forget_mix_error() -> None:
    st.session_state[f"{FORM}:mix:error"] = None


def style_mixes(records: list) -> list:
    """The mixes of this batch, always in view (they are jobs of the plan), and an expander
    to add one."""
    names = {r.id: r.name for r in records}
    mixes = [m for m in st.session_state.get(MIXES, []) if all(i in names for i in m.style_ids)]
    for i, entry in enumerate(mixes):
        text, remove = st.columns([6, 1.4], vertical_alignment="center")
        text.markdown(f"Mix: **{entry.label(names)}**")
        remove.button("Remove", key=f"nbb:mix:remove:{i}", on_click=remove_mix, args=(i,),
                      icon=":material/close:", width="stretch",
                      help="Take this mix out of the batch.")
    with st.expander("Style mixes: several styles blended in one job", expanded=bool(mixes)):
        st.multiselect("Styles to blend", list(names), format_func=names.get,
                       key=f"{FORM}:mix:styles", placeholder="Two or more styles",
                       on_change=forget_mix_error, persist_state=KEEP)
        weights, add = st.columns([3, 1.2], vertical_alignment="bottom")
        weights.text_input("Blend weights", key=f"{FORM}:mix:weights",
                           placeholder="e.g. 0.7, 0.3", on_change=forget_mix_error,
                           persist_state=KEEP,
                           help="One weight per style, in the order picked; empty means equal.")
        add.button("Add mix", on_click=add_mix, icon=":material/add:", key="nbb:mix:add",
                   width="stretch")
        field_error(st.session_state.get(f"{FORM}:mix:error"))
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
    content_records = new_batch.library("content")
    content_ids = image_picker("content", "Content images", content_records)
with right, st.container(border=True):
    style_records = new_batch.library("style")
    style_ids = image_picker("style", "Style images", style_records)
    mixes = style_mixes(style_records)
entries = [new_batch.StyleEntry((i,)) for i in style_ids] + mixes
style_names = {r.id: r.name for r in style_records}
chosen_photos = [r for r in content_records if r.id in content_ids]
mask_choices = regions_panel(chosen_photos, [e.label(style_names) for e in entries])

st.subheader("Settings")
values, sweep_texts = settings_inputs(FORM, forms.default_settings(), sweepable=True,
                                      persist=KEEP)

form = forms.check_form(values, sweep_texts)


@st.fragment
@outage_notice(retry=False)
def preview_grid(contents, entries, style_records, base, sweep) -> None:
    """Every content × style entry as the feed-forward network renders it, at once; a
    cell's button queues its full optimisation. A fragment: a click redraws the grid only."""
    names = {r.id: r.name for r in style_records}
    shas = {r.id: r.sha256 for r in style_records}
    rows = previews.grid_cells([(r.id, r.sha256) for r in contents], entries, shas)
    shown = [row[:previews.MAX_COLUMNS] for row in rows[:previews.MAX_ROWS]]
    try:
        jpegs = iter(previews.cell_previews([cell for row in shown for cell in row], base))
    except new_batch.InputError as exc:
        st.warning(str(exc), icon=":material/block:")
        return
    for row_index, row in enumerate(shown):
        columns = st.columns(previews.MAX_COLUMNS)  # a lone cell stays a cell's size
        for index, (cell, column) in enumerate(zip(row, columns)):
            label = new_batch.cell_label(contents[row_index].name, cell.entry, names)
            column.image(next(jpegs), caption=label, width="stretch")
            if column.button("Optimise", key=f"nbb:cell:{row_index}:{index}",
                             icon=":material/playlist_add:", width="stretch",
                             help=f"Queue the full optimisation of {label} with the "
                                  "settings below."):
                token = st.session_state.setdefault(TOKEN, new_batch.new_form_token())
                submission = new_batch.submission_key(token, [cell.content_id], [cell.entry],
                                                      base, sweep, f"cell {label}")
                try:
                    batch = previews.queue_cell(cell, base, sweep, submission, person())
                except new_batch.InputError as exc:
                    st.error(str(exc))
                else:
                    st.toast(new_batch.queued_message(batch), icon=":material/check:")
    hidden = sum(len(row) for row in rows) - sum(min(len(r), previews.MAX_COLUMNS)
                                                 for r in shown)
    if hidden:
        st.caption(f"…and {new_batch.plural(hidden, 'more cell')}, not previewed.")


if content_ids and entries:
    st.subheader("Previews")
    st.caption(f"Each pairing as the feed-forward network draws it ({previews.CELL_EDGE} px, "
               "in a moment): a first look, not the result. **Optimise** queues that cell's "
               "full optimisation.")
    by_id = {r.id: r for r in content_records}
    preview_grid([by_id[i] for i in content_ids if i in by_id], entries, style_records,
                 form.base if form.ok else forms.default_settings(), form.sweep if form.ok else {})

st.subheader("Jobs")
problem = None if form.ok else form.summary()
plan = None
mask_plans: dict = {}
if form.ok:
    try:
        mask_plans = masks.mask_plans(mask_choices, chosen_photos, len(entries))
        plan = new_batch.plan_frame(content_ids, entries, form.base, form.sweep, mask_plans)
    except new_batch.InputError as exc:
        problem = str(exc)
@st.fragment(run_every="3s")
@outage_notice(retry=False)
def estimate_and_jobs(content_ids, entries, base, sweep, mask_plans) -> None:
    """The count, the estimate and the table of jobs: redrawn as the worker measures this
    machine and finished jobs refine its speed, without touching the form."""
    plan = new_batch.plan_frame(content_ids, entries, base, sweep, mask_plans)
    shown = new_batch.batch_estimate(plan)
    count, estimate = st.columns([1, 3])
    count.metric("Jobs", str(len(plan)))
    estimate.metric("Estimated time", shown.text, help=shown.help)
    if len(plan):
        st.dataframe(plan, hide_index=True, width="stretch",
                     height=min(38 + 35 * len(plan), 300))
    else:
        st.info("Choose at least one content and one style image (or mix) to see the jobs.")


if problem is not None:
    count, estimate = st.columns([1, 3])
    count.metric("Jobs", "—")
    estimate.metric("Estimated time", "—")
    st.warning(problem, icon=":material/block:")
else:
    estimate_and_jobs(content_ids, entries, form.base, form.sweep, mask_plans)
name = st.text_input("Batch name", placeholder="optional", key=f"{FORM}:name",
                     persist_state=KEEP)

if TOKEN not in st.session_state:
    st.session_state[TOKEN] = new_batch.new_form_token()
submission = (new_batch.submission_key(st.session_state[TOKEN], content_ids, entries, form.base,
                                       form.sweep, name, mask_plans)
              if plan is not None else None)
if st.button("Queue batch", type="primary", icon=":material/playlist_add:",
             disabled=plan is None or not len(plan), key="nbb:queue"):
    try:
        batch = new_batch.queue_batch(content_ids, entries, form.base, form.sweep, name,
                                      submission=submission, masks=mask_plans,
                                      person=person())
    except new_batch.InputError as exc:
        st.error(str(exc))
    else:
        st.session_state[QUEUED] = (submission, new_batch.queued_message(batch),
                                    batch.resubmitted)
        for role in ("content", "style"):
            clear_errors(role)
queued = st.session_state.get(QUEUED)
if queued and queued[0] == submission:  # said until the plan changes
    (st.info if queued[2] else st.success)(queued[1])
    st.page_link("pages/queue.py", label="Watch it on the Queue page",
                 icon=":material/arrow_forward:")
