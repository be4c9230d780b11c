"""Queue: the running job live, batches with their progress, what finished recently (it
opens), queued jobs to cancel or reorder, failures to retry (with changed settings), workers."""

import streamlit as st

from nfx.app import queue
from pages._widgets import (outage_notice, fill_batch_form, notification_button, person,
                            result_dialog_if_open, settings_inputs, through_app_navigation,
                            thumbnail_button, thumbnail_styles)

through_app_navigation()

SHOWN = 25  # rows of queued/failed jobs with buttons; the rest are counted
RETRYING = "q:retrying"  # the job whose "Retry with changes" dialog is open


def act(action, job_id: int) -> None:
    """Button callback, as the signed-in person: a job that changed state meanwhile, or
    someone else's, is a toast, not a traceback."""
    message = action(job_id, person=person())
    if message:
        st.toast(message, icon=":material/info:")


def running_job(row) -> None:
    job = row.job
    with st.container(border=True):
        text, preview = st.columns([3, 1])
        with text:
            st.markdown(f"**{row.label}** · on {job.worker or '?'}")
            st.caption(row.runs + (f" · {row.owner}" if row.owner else ""))
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
            preview.image(job.preview_png, caption="latest preview", width="stretch",
                          alt=f"latest preview of {row.label}")


def batches(rows) -> None:
    st.subheader("Batches")
    if not rows:
        st.caption("No batches yet: queue one on *New batch*.")
    for progress in rows:
        bar, duplicate = st.columns([6, 1.4], vertical_alignment="bottom")
        owner = f" · {progress.owner}" if progress.owner else ""
        bar.progress(progress.fraction, text=f"**{progress.label}** · {progress.text}{owner}")
        if duplicate.button("Duplicate", key=f"q:dup:{progress.batch.id}",
                            icon=":material/content_copy:", width="stretch",
                            help="Fill the New batch form with this batch's images, settings "
                                 "and sweep, to queue it again with changes."):
            fill_batch_form(queue.draft_from_batch(progress.batch.id))


def recently_finished() -> None:
    cards = queue.recent_results()
    st.subheader("Recently finished")
    if not cards:
        st.caption("Nothing finished yet.")
        return
    ids = [card.card.result_id for card in cards]
    for column, card in zip(st.columns(queue.RECENT_RESULTS_SHOWN), cards):  # a strip
        with column:
            thumbnail_button(card.card.result_id, card.label, card.thumb,
                             f"q-{card.card.result_id}", ids, in_fragment=True)
            st.caption(card.label + (f" · {card.owner}" if card.owner else ""))


@st.fragment(run_every="2s")
@outage_notice(retry=False)
def live_queue() -> None:
    snapshot = queue.queue_snapshot(SHOWN)
    if snapshot.warning:
        st.warning(snapshot.warning, icon=":material/warning:")
    if snapshot.notice:
        st.info(snapshot.notice, icon=":material/hourglass_top:")
    counts = st.columns(len(queue.STATUSES))
    for column, status in zip(counts, queue.STATUSES):
        column.metric(status.capitalize(), snapshot.counts.get(status, 0))

    st.subheader("Running")
    if not snapshot.running:
        st.caption("Nothing running." + ("" if snapshot.workers else
                                         " No worker has started: run `python -m nfx worker`."))
    for row in snapshot.running:
        running_job(row)

    batches(snapshot.batches)
    recently_finished()

    st.subheader("Queued")
    if not snapshot.queued:
        st.caption("The queue is empty.")
    for row in snapshot.queued:
        label, front, cancel = st.columns([5, 1.4, 1.2], vertical_alignment="center")
        note = f"  \n:orange[{row.note}]" if row.note else ""
        owner = f" · {row.owner}" if row.owner else ""
        label.markdown(f"{row.label}  \n:gray[{row.runs}{owner}]{note}")
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
            label, retry, change = st.columns([5.2, 1.2, 1.6], vertical_alignment="center")
            settings = f"  \n:gray[{row.runs}{' · ' + row.settings if row.settings else ''}"
            settings += f"{' · ' + row.owner if row.owner else ''}]"
            label.markdown(f"{row.label}{settings}  \n:{colour}[{row.job.error or title.lower()}]")
            retry.button("Retry", key=f"q:retry:{row.job.id}", on_click=act,
                         args=(queue.retry_job, row.job.id), icon=":material/replay:",
                         width="stretch", help="Queue it again, from the start.")
            if change.button("Change…", key=f"q:change:{row.job.id}", icon=":material/tune:",
                             width="stretch", help="Retry with other settings."):
                st.session_state[RETRYING] = row.job.id
                st.rerun()

    st.subheader("Workers")
    if snapshot.workers:
        st.dataframe(queue.workers_frame(snapshot.workers), hide_index=True, width="stretch")
    else:
        st.caption("No workers yet. `python -m nfx app` starts one; "
                   "`python -m nfx worker` starts more.")


def stop_retrying() -> None:
    st.session_state.pop(RETRYING, None)


@st.dialog("Retry with changes", width="large", on_dismiss=stop_retrying)
def retry_dialog(job_id: int) -> None:
    job = queue.job(job_id)
    st.markdown(f"**{queue.job_rows([job])[0].label}**")
    if job.error:
        st.caption(f":red[{job.error}]")
    values, _ = settings_inputs(f"q:again:{job_id}", job.settings)
    if st.button("Retry with these settings", type="primary", icon=":material/replay:"):
        message = queue.retry_job(job_id, values, person=person())
        if message:
            st.error(message)
            return
        stop_retrying()
        st.toast(queue.retried_message(job_id), icon=":material/replay:")
        st.rerun()


st.title("Queue")
thumbnail_styles()
notification_button()
live_queue()
if st.session_state.get(RETRYING):
    retry_dialog(st.session_state[RETRYING])
result_dialog_if_open()
