"""Queue: the running job live, queued jobs to cancel or reorder, failures to retry, workers."""

import streamlit as st

from nfx.app import queue
from pages._widgets import through_app_navigation

through_app_navigation()

SHOWN = 25  # rows of queued/failed jobs with buttons; the rest are counted


def act(action, job_id: int) -> None:
    """Button callback: a job that changed state meanwhile is a toast, not a traceback."""
    message = action(job_id)
    if message:
        st.toast(message, icon=":material/info:")


def running_job(row) -> None:
    job = row.job
    with st.container(border=True):
        text, preview = st.columns([3, 1])
        with text:
            st.markdown(f"**{row.label}** · on {job.worker or '?'}")
            st.caption(row.runs)
            if row.note:
                st.warning(row.note, icon=":material/heart_broken:")
            st.progress(min(max(job.progress, 0.0), 1.0), text=row.progress)
            if job.losses:
                st.markdown("**Loss** " + " · ".join(
                    f"{term} `{value:.3g}`" for term, value in job.losses.items()))
            st.button("Cancel", key=f"q:cancel:{job.id}", on_click=act,
                      args=(queue.cancel_job, job.id), icon=":material/stop:",
                      disabled=job.cancel_requested,
                      help="The worker stops within a few iterations.")
        if job.preview_png:
            preview.image(job.preview_png, caption="latest preview", width="stretch")


@st.fragment(run_every="2s")
def live_queue() -> None:
    snapshot = queue.queue_snapshot(SHOWN)
    if snapshot.warning:
        st.warning(snapshot.warning, icon=":material/warning:")
    counts = st.columns(5)
    for column, status in zip(counts, queue.STATUSES):
        column.metric(status.capitalize(), snapshot.counts.get(status, 0))

    st.subheader("Running")
    if not snapshot.running:
        st.caption("Nothing running." + ("" if snapshot.workers else
                                         " No worker has started: run `python -m nfx worker`."))
    for row in snapshot.running:
        running_job(row)

    st.subheader("Queued")
    if not snapshot.queued:
        st.caption("The queue is empty.")
    for row in snapshot.queued:
        label, front, cancel = st.columns([5, 1.4, 1.2], vertical_alignment="center")
        note = f"  \n:orange[{row.note}]" if row.note else ""
        label.markdown(f"{row.label}  \n:gray[{row.runs}]{note}")
        front.button("To front", key=f"q:front:{row.job.id}", on_click=act,
                     args=(queue.move_to_front, row.job.id), icon=":material/vertical_align_top:",
                     width="stretch")
        cancel.button("Cancel", key=f"q:cancel:{row.job.id}", on_click=act,
                      args=(queue.cancel_job, row.job.id), icon=":material/close:",
                      width="stretch")
    hidden = snapshot.counts.get(queue.JobStatus.QUEUED, 0) - len(snapshot.queued)
    if hidden > 0:
        st.caption(f"…and {hidden} more queued.")

    for title, rows, colour in (("Failed", snapshot.failed, "red"),
                                ("Canceled", snapshot.canceled, "gray")):
        if rows:
            st.subheader(title)
        for row in rows:
            label, retry = st.columns([6.4, 1.2], vertical_alignment="center")
            label.markdown(f"{row.label}  \n:{colour}[{row.job.error or title.lower()}]")
            retry.button("Retry", key=f"q:retry:{row.job.id}", on_click=act,
                         args=(queue.retry_job, row.job.id), icon=":material/replay:",
                         width="stretch", help="Queue it again, from the start.")

    st.subheader("Workers")
    if snapshot.workers:
        st.dataframe(queue.workers_frame(snapshot.workers), hide_index=True, width="stretch")
    else:
        st.caption("No workers yet. `python -m nfx app` starts one; "
                   "`python -m nfx worker` starts more.")


st.title("Queue")
live_queue()
