"""Queue: the running job live, queued jobs to cancel or reorder, failures to retry, workers."""

import streamlit as st

from nfx import services
from pages._widgets import through_app_navigation

through_app_navigation()

SHOWN = 25  # rows of queued/failed jobs with buttons; the rest are counted


def running_job(job) -> None:
    with st.container(border=True):
        text, preview = st.columns([3, 1])
        with text:
            st.markdown(f"**{services.job_label(job)}** · on {job.worker or '?'}")
            st.progress(job.progress, text=(
                f"iteration {job.iteration} of {job.total_iterations}" if job.total_iterations
                else "starting: loading the images and the network"))
            if job.losses:
                st.markdown("**Loss** " + " · ".join(
                    f"{term} `{value:.3g}`" for term, value in job.losses.items()))
            st.button("Cancel", key=f"q:cancel:{job.id}", on_click=services.cancel_job,
                      args=(job.id,), icon=":material/stop:",
                      disabled=job.cancel_requested,
                      help="The worker stops within a few iterations.")
        if job.preview_png:
            preview.image(job.preview_png, caption="latest preview", width="stretch")


@st.fragment(run_every="2s")
def live_queue() -> None:
    snapshot = services.queue_snapshot(SHOWN)
    counts = st.columns(5)
    for column, status in zip(counts, services.STATUSES):
        column.metric(status.capitalize(), snapshot.counts.get(status, 0))

    st.subheader("Running")
    if not snapshot.running:
        st.caption("Nothing running." + ("" if snapshot.workers else
                                         " No worker has started: run `python -m nfx worker`."))
    for job in snapshot.running:
        running_job(job)

    st.subheader("Queued")
    if not snapshot.queued:
        st.caption("The queue is empty.")
    for job in snapshot.queued:
        label, front, cancel = st.columns([5, 1.4, 1.2], vertical_alignment="center")
        label.markdown(f"{services.job_label(job)} · {services.job_summary(job)}")
        front.button("To front", key=f"q:front:{job.id}", on_click=services.move_to_front,
                     args=(job.id,), icon=":material/vertical_align_top:", width="stretch")
        cancel.button("Cancel", key=f"q:cancel:{job.id}", on_click=services.cancel_job,
                      args=(job.id,), icon=":material/close:", width="stretch")
    hidden = snapshot.counts.get("queued", 0) - len(snapshot.queued)
    if hidden > 0:
        st.caption(f"…and {hidden} more queued.")

    if snapshot.failed:
        st.subheader("Failed")
        for job in snapshot.failed:
            label, retry = st.columns([6.4, 1.2], vertical_alignment="center")
            label.markdown(f"{services.job_label(job)}  \n:red[{job.error or 'failed'}]")
            retry.button("Retry", key=f"q:retry:{job.id}", on_click=services.retry_job,
                         args=(job.id,), icon=":material/replay:", width="stretch")

    st.subheader("Workers")
    if snapshot.workers:
        st.dataframe(services.workers_frame(snapshot.workers), hide_index=True, width="stretch")
    else:
        st.caption("No workers yet. `python -m nfx app` starts one; "
                   "`python -m nfx worker` starts more.")


st.title("Queue")
live_queue()
