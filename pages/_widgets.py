"""Widgets shared by several pages: settings forms generated from FIELDS, clickable
thumbnails, and the result dialog.

Not a page (the leading underscore keeps it out of navigation). Every settings widget comes
from a FieldSpec (through `nfx.app.forms`), so a new setting appears in the app without
touching any page.
"""

from __future__ import annotations

import json
import math
import runpy
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import streamlit as st

from nfx.app import access, forms, new_batch, queue as queue_view, result as view
from nfx.app.context import OUTAGES, data_url, database_reachable, outage_text

ENTRY_SCRIPT = Path(__file__).resolve().parents[1] / "streamlit_app.py"
THUMB_CSS = """<style>
[class*="st-key-thumb-"] button {padding: 0; border: none; background: none;}
[class*="st-key-thumb-"] button, [class*="st-key-thumb-"] button * {width: 100%;}
[class*="st-key-thumb-"] button:hover {outline: 2px solid #ff4b4b;}
[class*="st-key-thumb-"] button img {max-height: none !important; height: auto !important;
  width: 100% !important; max-width: none !important; object-fit: contain !important;
  border-radius: 0.4rem; display: block;}
[class*="st-key-thumb-"] button p {margin: 0;}
</style>"""


OUTAGE_RETRY_SECONDS = 3


# --- who is signed in -----------------------------------------------------------------------


def signed_out() -> bool:
    """Sign-in is on and nobody is signed in: the visitor may see the sign-in page only."""
    return access.sign_in_required() and not st.user.is_logged_in


def person() -> access.Person:
    """Who acts in this session: the signed-in person, or `local` without sign-in. Also
    called in button callbacks, so each action names who asked for it."""
    if not access.sign_in_required():
        return access.LOCAL  # st.user knows nothing then
    return access.person(st.user.get("email") if st.user.is_logged_in else None)


def sign_in_page() -> None:
    """All a signed-out visitor sees: what this is and how to sign in; nothing from the
    gallery (no thumbnail, name, link or count)."""
    st.title("NFX · neural style transfer")
    st.markdown("This NFX workbench is shared by a team: sign in to see its gallery and "
                "queue work.")
    for provider, label in access.sign_in_buttons():
        st.button(label, on_click=st.login, args=(provider,) if provider else (),
                  type="primary", icon=":material/login:", key=f"login:{provider or ''}")


def account_bar() -> None:
    """On every page: who is signed in, and signing out (or, without sign-in on purpose,
    that the app is open to anyone). A signed-in account without an email stops here."""
    if (notice := access.insecure_notice()) is not None:
        st.warning(notice, icon=":material/lock_open:")
    if not access.sign_in_required():
        return
    try:
        who = person()
    except access.InputError as exc:
        st.error(str(exc), icon=":material/no_accounts:")
        st.button("Sign out", on_click=st.logout, icon=":material/logout:")
        st.stop()
    with st.container(horizontal=True, horizontal_alignment="right",
                      vertical_alignment="center", key="account"):
        st.caption(f"Signed in as **{who.name}**" + (" · admin" if who.admin else ""))
        st.button("Sign out", on_click=st.logout, type="tertiary", icon=":material/logout:",
                  key="logout")


@contextmanager
def outage_notice(retry: bool = True) -> Iterator[None]:
    """Around a page or a fragment: a database that is away (or refuses to store) is a
    warning, never a traceback; with `retry`, the page reruns once the database answers
    (a fragment that runs every few seconds retries by itself). Also a decorator."""
    try:
        yield
    except OUTAGES as exc:
        st.warning(outage_text(exc), icon=":material/cloud_off:")
        if retry:
            _rerun_when_back()


@st.fragment(run_every=OUTAGE_RETRY_SECONDS)
def _rerun_when_back() -> None:
    if database_reachable():
        st.rerun(scope="app")


def through_app_navigation() -> None:
    """Make sure this page runs inside streamlit_app.py's st.navigation.

    With a `pages/` folder beside the entry script, Streamlit starts in its old multipage
    mode, in which it runs pages/*.py on their own, without the entry script (its
    navigation, page config and the watch on finished batches): a server does so for the
    first session that opens on a sub-page URL, and AppTest on every rerun. Then run the
    entry script here instead: its st.navigation switches the server to the new mode for
    good and runs this page properly (the entry script is then on the call stack)."""
    frame = sys._getframe(1)
    while frame is not None:
        if Path(frame.f_code.co_filename).resolve() == ENTRY_SCRIPT:
            return
        frame = frame.f_back
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


def setting_input(spec: forms.FieldSpec, value: Any, key: str, persist: str | None = None
                  ) -> Any:
    """One widget for one setting, typed by its FieldSpec; returns the widget's value.
    A list setting is a text box, checked right under it. `persist` is the widget's
    persist_state ("session": the value outlives the page)."""
    label, help_text = spec.label, _help(spec)
    if spec.kind == "int":
        return st.number_input(label, min_value=int(spec.minimum), max_value=int(spec.maximum),
                               value=int(value), step=1, help=help_text, key=key,
                               persist_state=persist)
    if spec.kind == "float":
        current = st.session_state.get(key, value)
        return st.number_input(label, min_value=float(spec.minimum),
                               max_value=float(spec.maximum), value=float(value),
                               step=_float_step(float(current)), format="%g", help=help_text,
                               key=key, persist_state=persist)
    if spec.kind == "choice":
        return st.selectbox(label, spec.choices, index=spec.choices.index(value),
                            help=help_text, key=key, persist_state=persist)
    text = st.text_input(label, value=spec.format(value),
                         help=help_text + "  \nComma-separated.", key=key,
                         persist_state=persist)
    field_error(forms.field_error(spec.name, text, sweep=False))
    return text


def field_error(message: str | None) -> None:
    if message:
        st.error(message, icon=":material/error:")


def sweep_key(key: str, name: str) -> str:
    return f"{key}:{name}:values"


def settings_inputs(key: str, base: forms.Settings, *, sweepable: bool = False,
                    columns: int = 3, persist: str | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """Tabs of settings widgets, one tab per FieldSpec group.

    Returns (values by name, sweep texts by name). With sweepable=True a multiselect picks
    settings that take several values instead of one; their value boxes sit right under it
    (a bad value is reported under its box), and their tabs point there. `persist` is the
    widgets' persist_state."""
    swept: list[str] = []
    sweeps: dict[str, str] = {}
    if sweepable:
        swept = st.multiselect(
            "Sweep these settings", forms.sweepable_fields(), persist_state=persist,
            format_func=forms.field_label, key=f"{key}:sweep",
            help="Each chosen setting takes several values, separated by commas or spaces; "
                 "the batch runs every combination.")
        boxes = st.columns(columns) if swept else []
        for index, name in enumerate(swept):
            spec = forms.FIELDS[name]
            with boxes[index % columns]:
                box_key = sweep_key(key, name)
                sweeps[name] = st.text_input(
                    f"{spec.label} (sweep)", value=spec.format(getattr(base, name)),
                    key=box_key, persist_state=persist,
                    help=_help(spec) + "  \nSeveral values, separated by commas or spaces: one "
                                       "job each.")
                field_error(forms.field_error(name, sweeps[name], sweep=True))
    values: dict[str, Any] = {}
    groups = forms.settings_groups()
    for tab, (group, specs) in zip(st.tabs(list(groups)), groups.items()):
        with tab:
            cells = st.columns(columns)
            for i, spec in enumerate(specs):
                with cells[i % columns]:
                    if spec.name in swept:
                        st.markdown(f"**{spec.label}**  \n:orange[swept: "
                                    f"{sweeps[spec.name] or '—'} (above)]")
                    else:
                        values[spec.name] = setting_input(spec, getattr(base, spec.name),
                                                          f"{key}:{spec.name}", persist)
    return values, sweeps


NEW_BATCH_PAGE = "pages/new_batch.py"
FORM = "nb"  # the New batch form's keys
KEEP = "session"  # persist_state of the form, the gallery's filters, compare's picks: the
# session's, across pages (Streamlit otherwise forgets a widget a run does not draw)
MIXES = f"{FORM}:mixes"  # [StyleEntry], the style mixes of the batch being planned
MASKS = f"{FORM}:masks"  # {content id: MaskChoice}, the photos' masks (pages/_regions.py)


def fill_batch_form(draft: new_batch.BatchDraft) -> None:
    """Put a draft (a result's settings, a batch to duplicate) into the New batch form and
    go there."""
    state = st.session_state
    state[f"{FORM}:content"] = list(draft.content_ids)
    state[f"{FORM}:style"] = draft.style_ids
    state[MIXES] = draft.mixes
    state[MASKS] = dict(draft.masks)
    for name, spec in forms.FIELDS.items():
        value = getattr(draft.settings, name)
        state[f"{FORM}:{name}"] = spec.format(value) if spec.kind == "list" else value
    state[f"{FORM}:sweep"] = list(draft.sweep)
    for name, values in draft.sweep.items():
        state[sweep_key(FORM, name)] = ", ".join(forms.FIELDS[name].format(v) for v in values)
    state[f"{FORM}:name"] = draft.name
    st.switch_page(NEW_BATCH_PAGE)


def sample_previews(per_row: int = 6) -> None:
    """The built-in samples, shown before they are added (a fresh install)."""
    samples = new_batch.sample_previews()
    for start in range(0, len(samples), per_row):
        for column, (name, role, jpeg) in zip(st.columns(per_row), samples[start:start + per_row]):
            caption = f"{name.rsplit('.', 1)[0]} ({role})"
            column.image(jpeg, caption=caption, width="stretch", alt=caption)


def add_samples_button() -> int | None:
    """The built-in samples, one click away; how many were new, or None while not clicked."""
    if st.button("Add sample images", icon=":material/add_photo_alternate:",
                 help="Two content pictures and four painterly styles, drawn by NFX itself."):
        return new_batch.add_sample_images()
    return None


# --- clickable thumbnails and the result dialog ---------------------------------------------

OPEN_RESULT = "open_result"
RESULT_LIST = "open_result:list"  # the ids the dialog pages through
LAST_RESULT = "open_result:last"  # the one shown when it closed: the gallery turns to its page


def open_result(result_id: int, ids: list[int] | None = None) -> None:
    """Callback: the dialog stays open across reruns until dismissed."""
    st.session_state[OPEN_RESULT] = result_id
    st.session_state[RESULT_LIST] = list(ids or [result_id])


def close_result() -> None:
    shown = st.session_state.pop(OPEN_RESULT, None)
    if shown is not None:
        st.session_state[LAST_RESULT] = shown


def thumbnail_styles() -> None:
    """Once per page that shows thumbnail buttons: make their pictures fill the button."""
    st.html(THUMB_CSS)


def thumbnail_button(result_id: int, label: str, thumb: bytes, key: str, ids: list[int], *,
                     in_fragment: bool = False) -> None:
    """A result's thumbnail that opens it: a button whose label is the picture, named for
    screen readers by the result's label. Inside a fragment, a click reruns the whole page,
    which is where the dialog lives."""
    alt = label.replace("[", "(").replace("]", ")")
    if st.button(f"![{alt}]({data_url(thumb)})", key=f"thumb-{key}", help=label,
                 on_click=open_result, args=(result_id, ids), width="stretch") and in_fragment:
        st.rerun()


def result_dialog_if_open() -> None:
    if st.session_state.get(OPEN_RESULT):
        result_dialog(st.session_state[OPEN_RESULT])


def _go(result_id: int) -> None:
    st.session_state[OPEN_RESULT] = result_id
    st.rerun()


@st.dialog("Result", width="large", on_dismiss=close_result)
def result_dialog(result_id: int) -> None:
    """Everything about one result, what you can do with it, and its neighbours (← and →
    page through the list it was opened from, every page of it; Esc closes)."""
    try:
        record = view.result(result_id, person())
    except view.InputError as exc:
        st.info(str(exc))
        return
    before, after = view.neighbours(result_id, st.session_state.get(RESULT_LIST, []))
    back, title, forward = st.columns([1.3, 6, 1.3], vertical_alignment="center")
    if back.button("Previous", icon=":material/chevron_left:", key="dlg:prev",
                   disabled=before is None, width="stretch", shortcut="Left"):
        _go(before)
    title.markdown(f"**{view.label(record)}**")
    if forward.button("Next", icon=":material/chevron_right:", key="dlg:next",
                      disabled=after is None, width="stretch", shortcut="Right"):
        _go(after)
    image_col, info_col = st.columns([3, 2])
    with image_col:
        st.image(view.image_bytes(record.image_sha256), width="stretch",
                 caption=view.caption(record), alt=view.label(record))
    with info_col:
        inputs = st.columns(1 + len(record.styles) + (record.mask is not None))
        inputs[0].image(view.thumbnail(record.content.sha256), caption="content",
                        width="stretch", alt=f"content: {record.content.name}")
        for index, (column, style) in enumerate(zip(inputs[1:], record.styles)):
            column.image(view.thumbnail(style.sha256),
                         caption=f"style {index + 1}" if record.mask else "style",
                         width="stretch", alt=f"style: {style.name}")
        if record.mask is not None:
            inputs[-1].image(view.thumbnail(record.mask.sha256), caption="mask",
                             width="stretch", alt=f"mask: {record.mask.name}")
            st.caption(f"Regions: {view.regions_caption(record)}")
        st.download_button("Download PNG", view.result_png(result_id), width="stretch",
                           file_name=view.png_file_name(record), mime="image/png",
                           icon=":material/download:", on_click="ignore",
                           help="The PNG carries its settings and inputs: drop it on "
                                "*PNG info* to queue it again.")
        if st.button("Use these settings", icon=":material/tune:", width="stretch",
                     key="dlg:use", help="A new batch from this result's images and "
                                         "settings, on the New batch page."):
            close_result()
            fill_batch_form(view.draft(result_id))
        st.toggle("Favourite", value=record.favourite, key=f"fav:{result_id}",
                  help="Your own star: everyone has theirs; tags are shared.",
                  on_change=lambda: view.set_favourite(
                      result_id, st.session_state[f"fav:{result_id}"], person()))
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
                job = view.rerun(result_id, values, person())
            except view.InputError as exc:
                st.error(str(exc))
            else:
                st.success(view.rerun_message(job))


def delete_with_confirmation(result_id: int) -> None:
    """Delete asks first and says what goes with the result; deleting someone else's result
    is refused in one line (unless you are an admin)."""
    asking, refusal = f"delete:{result_id}", f"delete:{result_id}:refused"
    if refused := st.session_state.pop(refusal, None):
        st.error(refused, icon=":material/block:")
    if not st.session_state.get(asking):
        if st.button("Delete result…", icon=":material/delete:", type="tertiary",
                     key=f"dlg:delete:{result_id}"):
            st.session_state[asking] = True
            st.rerun()
        return
    st.warning(view.delete_summary(result_id), icon=":material/warning:")
    yes, no = st.columns(2)
    if yes.button("Delete for good", type="primary", key=f"dlg:delete-yes:{result_id}"):
        refused = view.delete_result(result_id, person())
        st.session_state.pop(asking, None)
        if refused:
            st.session_state[refusal] = refused
            st.rerun()
        ids = [i for i in st.session_state.get(RESULT_LIST, []) if i != result_id]
        st.session_state[RESULT_LIST] = ids
        close_result()
        st.toast("Result deleted.", icon=":material/delete:")
        st.rerun()
    if no.button("Keep it", key=f"dlg:delete-no:{result_id}"):
        st.session_state.pop(asking, None)
        st.rerun()


# --- finished batches: a toast in the app, a notification in the browser ----------------------

FOLLOWED = "nfx:followed-batches"  # batches with work left at this session's last look
WATCH_SECONDS = 5
NOTIFY_SCRIPT = """<script>
if ("Notification" in window && Notification.permission === "granted") {
  new Notification("NFX", {body: %s, tag: %s});
}
</script>"""
PERMISSION_BUTTON = """<button id="nfx-notify" type="button" style="border:1px solid #ccc;
  border-radius:0.5rem;padding:0.3rem 0.8rem;background:white;cursor:pointer;">
  Notify me in the browser when a batch finishes</button>
<script>
(function () {
  const button = document.getElementById("nfx-notify");
  if (!button) return;
  const show = () => {
    if (!("Notification" in window)) {
      button.textContent = "This browser cannot show notifications"; button.disabled = true;
    } else if (Notification.permission === "granted") {
      button.textContent = "Browser notifications are on"; button.disabled = true;
    } else if (Notification.permission === "denied") {
      button.textContent = "Browser notifications are blocked for this site";
      button.disabled = true;
    }
  };
  button.onclick = () => Notification.requestPermission().then(show);
  show();
})();
</script>"""


@st.fragment(run_every=WATCH_SECONDS)
@outage_notice(retry=False)
def batch_watch() -> None:
    """On every page: when a batch this session saw with work left finishes, say so (a
    toast, and a browser notification if the user allowed them)."""
    followed = st.session_state.get(FOLLOWED)
    active, finished = queue_view.batch_notices(followed or set(), person())
    st.session_state[FOLLOWED] = active
    for progress in finished:
        text = queue_view.finished_notice(progress)
        st.toast(text, icon=":material/task_alt:", duration="long")
        st.html(NOTIFY_SCRIPT % (json.dumps(text), json.dumps(f"nfx-batch-{progress.batch.id}")),
                unsafe_allow_javascript=True)


def notification_button() -> None:
    """Ask the browser for permission to notify (it must come from a click in the page)."""
    st.html(PERMISSION_BUTTON, unsafe_allow_javascript=True)
