"""Gallery queries: results (and, when asked for, unfinished jobs), filtered on anything the
app offers.

A result is one card, however many jobs show it: a job identical to a finished one re-uses its
result (`Job.reused`), so only the job that made a result stands for it, and a batch filter
finds the results its re-using jobs point to. "Date" is when a result was made (the job's
`finished_at`; for unfinished jobs, when they were queued), so a job moved to the front does
not sort before newer work.

Every filter is a WHERE clause on an indexed column (status/date, content, style, tag,
the viewer's stars, who queued it, and the `INDEXED_FIELDS` setting columns), so the first page stays fast with tens of
thousands of results.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import ColumnElement, Select, UnaryExpression, and_, func, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session, aliased

from nfx.errors import InputError
from nfx.people import LOCAL_NAME
from nfx.settings import INDEXED_FIELDS
from nfx.store.models import Job, JobStyle, Result, ResultTag, Star, Tag, setting_column
from nfx.status import JobStatus

SORTS = ("newest", "loss", "seconds", "id") + INDEXED_FIELDS


@dataclass(frozen=True)
class GalleryFilter:
    content_ids: tuple[int, ...] = ()
    style_ids: tuple[int, ...] = ()
    batch_ids: tuple[int, ...] = ()
    statuses: tuple[str, ...] = (JobStatus.DONE,)  # empty: every status
    tags: tuple[str, ...] = ()  # any of these
    favourites_only: bool = False  # the viewer's stars
    owners: tuple[str, ...] = ()  # queued by any of these people (nfx.people)
    viewer: str = LOCAL_NAME  # whose stars the cards show and favourites_only means
    date_from: date | datetime | None = None  # when the result was made, inclusive
    date_to: date | datetime | None = None  # inclusive (a date means the whole day)
    ranges: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    choices: dict[str, list[Any]] = field(default_factory=dict)
    sort: str = "newest"  # one of SORTS
    descending: bool = True


def _as_datetime(value: date | datetime, *, end: bool) -> datetime:
    if isinstance(value, datetime):
        return value.replace(tzinfo=None)
    return datetime.combine(value + timedelta(days=1), time()) if end else \
        datetime.combine(value, time())


def _indexed(name: str) -> InstrumentedAttribute[Any]:
    if name not in INDEXED_FIELDS:
        raise InputError(f"cannot filter on {name!r}; filterable settings are: "
                         + ", ".join(INDEXED_FIELDS))
    return setting_column(name)


def made_at() -> ColumnElement[datetime]:
    """When a card's result was made (for an unfinished job: when it was queued)."""
    return func.coalesce(Job.finished_at, Job.created_at)


def conditions(flt: GalleryFilter) -> list[ColumnElement[bool]]:
    # one card per result: the job that made it stands for every job that re-uses it
    where: list[ColumnElement[bool]] = [or_(Job.status != JobStatus.DONE,
                                            Job.reused.is_(False))]
    if flt.statuses:
        where.append(Job.status.in_(flt.statuses))
    if flt.content_ids:
        where.append(Job.content_id.in_(flt.content_ids))
    if flt.style_ids:
        # an uncorrelated IN: computed once, not probed per job
        where.append(Job.id.in_(select(JobStyle.job_id)
                                .where(JobStyle.image_id.in_(flt.style_ids))))
    if flt.batch_ids:  # its own jobs, and the results its re-using jobs point to
        reusing = aliased(Job)
        where.append(or_(Job.batch_id.in_(flt.batch_ids),
                         Job.result_id.in_(select(reusing.result_id).where(
                             reusing.batch_id.in_(flt.batch_ids), reusing.reused.is_(True)))))
    if flt.tags:
        where.append(Job.result_id.in_(select(ResultTag.result_id)
                                       .join(Tag, Tag.id == ResultTag.tag_id)
                                       .where(Tag.name.in_(flt.tags))))
    if flt.favourites_only:
        where.append(Job.result_id.in_(select(Star.result_id)
                                       .where(Star.person == flt.viewer)))
    if flt.owners:
        where.append(Job.owner.in_(flt.owners))
    if flt.date_from is not None:
        where.append(made_at() >= _as_datetime(flt.date_from, end=False))
    if flt.date_to is not None:
        end = _as_datetime(flt.date_to, end=True)
        where.append(made_at() < end if not isinstance(flt.date_to, datetime)
                     else made_at() <= end)
    for name, (low, high) in flt.ranges.items():
        column = _indexed(name)
        if low is not None:
            where.append(column >= low)
        if high is not None:
            where.append(column <= high)
    for name, values in flt.choices.items():
        where.append(_indexed(name).in_(list(values)))
    return where


def order(flt: GalleryFilter) -> list[UnaryExpression[Any]]:
    if flt.sort not in SORTS:
        raise InputError(f"cannot sort by {flt.sort!r}; choose one of " + ", ".join(SORTS))
    if flt.sort == "newest":  # unfinished jobs first (newest work), then results by when made
        if flt.descending:
            return [Job.finished_at.desc().nulls_first(), Job.created_at.desc(), Job.id.desc()]
        return [Job.finished_at.asc().nulls_last(), Job.created_at.asc(), Job.id.asc()]
    column = {"loss": Result.loss_total, "seconds": Result.seconds,
              "id": Job.id}.get(flt.sort)
    if column is None:
        column = setting_column(flt.sort)
    if flt.descending:
        return [column.desc().nulls_last(), Job.id.desc()]
    return [column.asc().nulls_last(), Job.id.asc()]


def finished_result(session: Session, digest: str) -> Result | None:
    """The result some finished job with these inputs (`input_digest`) already made: what
    an identical job re-uses, and what a PNG of that run is in the gallery."""
    return session.scalars(
        select(Result).join(Job, Job.result_id == Result.id)
        .where(Job.input_digest == digest, Job.status == JobStatus.DONE).limit(1)).first()


def gallery_select(flt: GalleryFilter) -> Select:
    return (select(Job, Result).outerjoin(Result, Job.result_id == Result.id)
            .where(and_(True, *conditions(flt))).order_by(*order(flt)))


def count_select(flt: GalleryFilter) -> Select:
    return (select(func.count()).select_from(Job).outerjoin(Result, Job.result_id == Result.id)
            .where(and_(True, *conditions(flt))))
