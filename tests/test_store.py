"""The gallery store on real databases: uploads, batches, dedup, gallery queries, export,
migrations."""

from __future__ import annotations

import io
import sqlite3
import zipfile
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from conftest import TINY, image_bytes, make_image, synthetic_run
from sqlalchemy import create_engine, func, select, text, update


from nfx.errors import InputError
from nfx.images import read_png_settings
from nfx.settings import FIELDS, INDEXED_FIELDS, Settings
from nfx.store import GalleryFilter, open_store
from nfx.queue import Queue
from nfx.store import db as store_db
from nfx.store.models import Blob, Image, Job, utcnow



def png(seed: int, w: int = 40, h: int = 32) -> bytes:
    return image_bytes(make_image(w, h, seed=seed))


def finish_next(store, losses_total: float = 1.0, seconds: float = 1.0) -> int | None:
    """Claim the next job and store a synthetic picture as its result (no engine needed for
    testing the store); returns the job id."""
    queue = Queue(store)
    claim = queue.claim_next("test-worker")
    if claim is None:
        return None
    done = synthetic_run(claim, total=losses_total, seconds=seconds)
    assert queue.finish(claim, *done) is not None
    return claim.job_id


def count(store, model) -> int:
    with store.read() as session:
        return session.scalar(select(func.count()).select_from(model))


@pytest.fixture
def gallery(store):
    """12 finished results (2 contents × 2 styles × 3 style weights) and 2 jobs not done."""
    queue = Queue(store)
    contents = [store.add_image(png(i), f"content{i}.png", "content") for i in (1, 2)]
    styles = [store.add_image(png(i, 36, 36), f"style{i}.png", "style") for i in (3, 4)]
    batch = queue.create_batch([c.id for c in contents], [s.id for s in styles], TINY,
                               {"style_weight": [1e3, 1e4, 1e5]}, name="sweep")
    for n in range(12):
        finish_next(store, losses_total=100.0 - n, seconds=1.0 + n)
    other = queue.create_batch([contents[0].id], [styles[0].id], TINY.with_changes(size=48),
                               {"seed": [1, 2]}, name="pending")
    claim = queue.claim_next("w")
    queue.fail(claim, "boom")
    return {"contents": contents, "styles": styles, "batch": batch, "other": other}


# --- opening -----------------------------------------------------------------------------


def test_url_precedence(monkeypatch, tmp_path):
    monkeypatch.delenv("NFX_DATABASE_URL", raising=False)
    default = store_db.resolve_url(None)
    assert default == f"sqlite:///{store_db.DATA_DIR / 'nfx.db'}"
    assert store_db.DATA_DIR.is_dir() and store_db.DATA_DIR.parent.joinpath("nfx").is_dir()
    monkeypatch.setenv("NFX_DATABASE_URL", f"sqlite:///{tmp_path / 'env.db'}")
    assert store_db.resolve_url(None).endswith("env.db")
    assert store_db.resolve_url(f"sqlite:///{tmp_path / 'arg.db'}").endswith("arg.db")
    assert store_db.resolve_url("postgresql://u@h/db").startswith("postgresql+psycopg://")
    with pytest.raises(InputError):
        store_db.resolve_url("not a url")


def test_sqlite_is_wal_with_foreign_keys(sqlite_url):
    store = open_store(sqlite_url)
    with store.database.connect() as connection:
        assert connection.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert connection.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        assert connection.exec_driver_sql("PRAGMA busy_timeout").scalar() >= 5000
    assert store_db.current_revision(store.database) == store_db.head_revision()


# --- images ------------------------------------------------------------------------------


def test_same_picture_is_stored_once(store):
    data = png(1)
    first = store.add_image(data, "a.png", "content")
    again = store.add_image(data, "renamed.png", "content")
    as_style = store.add_image(data, "a.png", "style")
    assert again.id == first.id and as_style.id != first.id
    assert (first.width, first.height, first.role) == (40, 32, "content")
    assert count(store, Blob) == 2  # the picture and its thumbnail
    assert store.blob(first.sha256) == data
    with Image_open(store.thumbnail(first.sha256)) as thumb:
        assert max(thumb.size) <= 256
    assert [i.id for i in store.list_images("style")] == [as_style.id]
    assert store.get_image(first.id) == first


def Image_open(data: bytes):
    from PIL import Image as PILImage

    return PILImage.open(io.BytesIO(data))


@pytest.mark.parametrize("data", [b"", b"not an image at all", png(1)[:60]],
                         ids=["empty", "text", "truncated"])
def test_bad_upload_is_refused_and_leaves_no_row(store, data):
    with pytest.raises(InputError, match="broken.jpg"):
        store.add_image(data, "broken.jpg", "content")
    assert count(store, Blob) == 0 and count(store, Image) == 0


def test_batch_with_one_bad_upload_writes_nothing(store, queue):
    with pytest.raises(InputError, match="bad.png"):
        queue.create_batch_from_uploads([("good.png", png(1)), ("bad.png", b"\x89PNG junk")],
                                        [("s.png", png(2))], TINY)
    assert count(store, Blob) == count(store, Image) == count(store, Job) == 0
    assert queue.list_batches() == []


def test_unknown_role_and_ids_are_input_errors(store, queue):
    with pytest.raises(InputError):
        store.add_image(png(1), "a.png", "background")
    with pytest.raises(InputError, match="no image with id 9[89]"):
        queue.create_batch([99], [98], TINY)
    with pytest.raises(InputError):
        store.get_result(12345)


# --- batches, dedup, rerun -------------------------------------------------------------


def test_batch_is_the_cartesian_product(store, queue):
    c = [store.add_image(png(i), f"c{i}.png", "content").id for i in (1, 2)]
    s = [store.add_image(png(i), f"s{i}.png", "style").id for i in (3, 4)]
    batch = queue.create_batch(c, s, TINY, {"style_weight": [1e4, 1e5], "size": [32, 48]},
                               name="grid")
    assert (batch.job_count, batch.reused_count, batch.name) == (16, 0, "grid")
    jobs = queue.list_jobs(batch_id=batch.id)
    combos = {(j.content_id, j.style_ids, j.settings.style_weight, j.settings.size)
              for j in jobs}
    assert len(combos) == 16 and all(j.status == "queued" for j in jobs)
    with store.read() as session:  # indexed columns follow the settings
        rows = session.execute(select(Job.s_style_weight, Job.s_size, Job.settings_json)).all()
    assert all(Settings.from_json(js).style_weight == w and Settings.from_json(js).size == z
               for w, z, js in rows)


def test_identical_job_reuses_result_unless_forced(store, queue):
    c = store.add_image(png(1), "c.png", "content").id
    s = store.add_image(png(2), "s.png", "style").id
    first = queue.create_batch([c], [s], TINY, {"seed": [1, 2]})
    finish_next(store)
    finish_next(store)
    again = queue.create_batch([c], [s], TINY, {"seed": [1, 2, 3]})
    assert (again.job_count, again.reused_count) == (3, 2)
    old = {j.settings.seed: j.result_id for j in queue.list_jobs(batch_id=first.id)}
    new = queue.list_jobs(batch_id=again.id)
    for job in new:
        if job.settings.seed in old:
            assert job.status == "done" and job.reused and job.result_id == old[job.settings.seed]
        else:
            assert job.status == "queued" and job.result_id is None
    forced = queue.create_batch([c], [s], TINY, {"seed": [1, 2]}, force=True)
    assert forced.reused_count == 0
    assert {j.status for j in queue.list_jobs(batch_id=forced.id)} == {"queued"}


def test_rerun_with_changes(store, queue):
    c = store.add_image(png(1), "c.png", "content").id
    s = store.add_image(png(2), "s.png", "style").id
    queue.create_batch([c], [s], TINY)
    finish_next(store)
    result_id = queue.list_jobs(status="done")[0].result_id
    job = queue.rerun(result_id, {"style_weight": 5e4, "steps": 3})
    assert job.status == "queued" and (job.content_id, job.style_ids) == (c, (s,))
    assert job.settings == TINY.with_changes(style_weight=5e4, steps=3)
    same = queue.rerun(result_id)  # no changes: run it again, not a reuse
    assert same.status == "queued" and same.settings == TINY
    with pytest.raises(InputError, match="steps"):
        queue.rerun(result_id, {"steps": -1})


# --- gallery queries ---------------------------------------------------------------------


def ids(cards) -> list[int]:
    return [c.job_id for c in cards]


def test_gallery_defaults_to_done_newest_first(store, gallery):
    cards = store.query_gallery(GalleryFilter(), page_size=100)
    assert len(cards) == store.count_gallery(GalleryFilter()) == 12
    assert all(c.status == "done" and c.thumb_sha256 and c.result_id for c in cards)
    assert ids(cards) == sorted(ids(cards), reverse=True)
    assert store.count_gallery(GalleryFilter(statuses=())) == 14
    assert store.count_gallery(GalleryFilter(statuses=("failed",))) == 1
    assert store.count_gallery(GalleryFilter(statuses=("queued", "failed"))) == 2


def test_gallery_filters_narrow(store, gallery):
    content, style = gallery["contents"][0], gallery["styles"][1]
    by_content = store.query_gallery(GalleryFilter(content_ids=(content.id,)), page_size=50)
    assert len(by_content) == 6 and {c.content_id for c in by_content} == {content.id}
    by_style = store.query_gallery(GalleryFilter(style_ids=(style.id,)), page_size=50)
    assert len(by_style) == 6 and {c.style_ids for c in by_style} == {(style.id,)}
    both = GalleryFilter(content_ids=(content.id,), style_ids=(style.id,))
    assert store.count_gallery(both) == 3
    assert store.count_gallery(GalleryFilter(batch_ids=(gallery["other"].id,),
                                             statuses=())) == 2
    weight = GalleryFilter(ranges={"style_weight": (5e3, None)})
    assert store.count_gallery(weight) == 8
    assert {c.settings.style_weight for c in store.query_gallery(weight, page_size=50)} == \
        {1e4, 1e5}
    assert store.count_gallery(GalleryFilter(ranges={"style_weight": (None, 1e3)})) == 4
    assert store.count_gallery(GalleryFilter(choices={"size": [48]}, statuses=())) == 2
    assert store.count_gallery(GalleryFilter(choices={"optimizer": ["adam"]})) == 0
    with pytest.raises(InputError, match="cannot filter"):
        store.count_gallery(GalleryFilter(ranges={"seed": (0, 1)}))


def test_gallery_tags_and_favourites(store, gallery):
    cards = store.query_gallery(GalleryFilter(), page_size=50)
    store.set_favourite(cards[0].result_id)
    store.set_favourite(cards[1].result_id)
    store.set_favourite(cards[1].result_id, False)
    favourites = store.query_gallery(GalleryFilter(favourites_only=True))
    assert ids(favourites) == [cards[0].job_id] and favourites[0].favourite
    assert store.set_tags(cards[2].result_id, [" Best ", "blue", "best"]) == ("best", "blue")
    store.set_tags(cards[3].result_id, ["blue"])
    assert store.all_tags() == ["best", "blue"]
    assert store.count_gallery(GalleryFilter(tags=("blue",))) == 2
    assert ids(store.query_gallery(GalleryFilter(tags=("best",)))) == [cards[2].job_id]
    assert store.get_result(cards[2].result_id).tags == ("best", "blue")
    store.set_tags(cards[2].result_id, [])
    assert store.all_tags() == ["blue"]  # unused tags go away


def test_gallery_date_range(store, gallery):
    old_job = store.query_gallery(GalleryFilter())[-1].job_id
    with store.write() as session:
        session.execute(update(Job).where(Job.id == old_job)
                        .values(created_at=utcnow() - timedelta(days=10),
                                finished_at=utcnow() - timedelta(days=10)))  # when made
    today = date.today()
    assert store.count_gallery(GalleryFilter(date_from=today - timedelta(days=1))) == 11
    assert ids(store.query_gallery(GalleryFilter(date_to=today - timedelta(days=5)))) == \
        [old_job]
    assert store.count_gallery(GalleryFilter(date_from=today + timedelta(days=1))) == 0
    window = GalleryFilter(date_from=datetime.now() - timedelta(days=11),
                           date_to=datetime.now() - timedelta(days=9))
    assert store.count_gallery(window) == 1


def test_gallery_sorts_and_pages(store, gallery):
    by_loss = store.query_gallery(GalleryFilter(sort="loss", descending=False), page_size=50)
    totals = [c.losses["total"] for c in by_loss]
    assert totals == sorted(totals) and len(set(totals)) == 12
    by_weight = store.query_gallery(GalleryFilter(sort="style_weight"), page_size=50)
    weights = [c.settings.style_weight for c in by_weight]
    assert weights == sorted(weights, reverse=True)
    by_time = store.query_gallery(GalleryFilter(sort="seconds", descending=True), page_size=50)
    assert [c.seconds for c in by_time] == sorted((c.seconds for c in by_time), reverse=True)
    pages = [store.query_gallery(GalleryFilter(sort="loss"), page=p, page_size=5)
             for p in range(4)]
    assert [len(p) for p in pages] == [5, 5, 2, 0]
    assert sum((ids(p) for p in pages), []) == ids(store.query_gallery(
        GalleryFilter(sort="loss"), page_size=50))
    with pytest.raises(InputError, match="sort"):
        store.query_gallery(GalleryFilter(sort="colour"))


def test_result_record_png_and_delete(store, queue, gallery):
    card = store.query_gallery(GalleryFilter())[0]
    result = store.get_result(card.result_id)
    assert result.job_id == card.job_id and result.content.id == card.content_id
    assert [s.id for s in result.styles] == list(card.style_ids)
    assert result.settings == card.settings and result.losses["total"] == card.losses["total"]
    assert read_png_settings(store.result_png(result.id)) == result.settings
    assert queue.work_model().per_megapixel_iteration > 0
    blobs = count(store, Blob)
    store.delete_result(result.id)
    assert count(store, Blob) == blobs - 2  # its PNG and thumbnail
    assert store.count_gallery(GalleryFilter()) == 11
    with pytest.raises(InputError):
        store.get_result(result.id)


def test_export_batch_zip_and_csv(store, gallery):
    batch = gallery["batch"]
    archive = zipfile.ZipFile(io.BytesIO(store.export_batch(batch.id)))
    names = archive.namelist()
    pngs = [n for n in names if n.endswith(".png")]
    assert len(pngs) == 12 and "settings.csv" in names
    table = pd.read_csv(archive.open("settings.csv"))
    assert list(table.columns[:5]) == ["file", "result_id", "job_id", "content", "styles"]
    assert set(FIELDS) <= set(table.columns)
    assert {"loss_total", "loss_style", "seconds", "device"} <= set(table.columns)
    assert sorted(table["file"]) == sorted(pngs)
    assert sorted(table["style_weight"].unique()) == [1e3, 1e4, 1e5]
    for name in pngs[:3]:
        settings = read_png_settings(archive.read(name))
        row = table[table["file"] == name].iloc[0]
        assert settings.style_weight == row["style_weight"] and settings.size == 32
    with pytest.raises(InputError, match="no finished results"):
        store.export_batch(gallery["other"].id)


def test_ids_are_never_reused_after_a_delete(store, queue, gallery):
    newest = store.query_gallery(GalleryFilter())[0]
    job_ids = {j.id for j in queue.list_jobs(limit=None)}
    store.delete_result(newest.result_id)
    assert queue.get_job(newest.job_id).status == "deleted", "its batch remembers it"
    again = queue.create_batch([gallery["contents"][0].id], [gallery["styles"][0].id],
                               TINY.with_changes(seed=99), priority=10)
    (job,) = queue.list_jobs(batch_id=again.id)
    assert job.id > max(job_ids)  # not the deleted job's id
    assert finish_next(store) == job.id
    assert queue.get_job(job.id).result_id > newest.result_id


# --- migrations --------------------------------------------------------------------------


def test_database_from_first_migration_upgrades_with_data(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    engine = store_db.create_db_engine(url)
    store_db.migrate(engine, "0001")
    assert store_db.current_revision(engine) == "0001"
    data, thumb = png(1), png(9, 8, 8)
    settings = TINY.with_changes(style_weight=3e4)
    now = datetime(2024, 5, 1, 12, 0)
    with engine.begin() as c:  # what NFX 0001 wrote: no setting columns, no tags
        for digest, blob in ((store_db_sha(data), data), (store_db_sha(thumb), thumb)):
            c.execute(text("INSERT INTO blobs VALUES (:s, :d, :n, :t)"),
                      dict(s=digest, d=blob, n=len(blob), t=now))
        for image_id, role in ((1, "content"), (2, "style")):
            c.execute(text("INSERT INTO images VALUES (:i, :s, :th, :n, :r, 40, 32, :t)"),
                      dict(i=image_id, s=store_db_sha(data), th=store_db_sha(thumb),
                           n=f"{role}.png", r=role, t=now))
        c.execute(text("INSERT INTO batches VALUES (1, 'old', :s, '{}', :t)"),
                  dict(s=settings.to_json(), t=now))
        c.execute(text("INSERT INTO results VALUES (1, 1, :s, :th, 40, 32, :js, :l, 5.0, "
                       "'[]', 2.5, 'cpu', 'fp32', :t)"),
                  dict(s=store_db_sha(data), th=store_db_sha(thumb), js=settings.to_json(),
                       l='{"total": 5.0}', t=now))
        c.execute(text("INSERT INTO jobs (id, batch_id, content_id, settings_json, "
                       "input_digest, force, status, priority, attempts, max_attempts, "
                       "cancel_requested, progress, iteration, total_iterations, losses, "
                       "created_at, result_id, reused) VALUES (1, 1, 1, :js, 'x', 0, 'done', "
                       "0, 1, 3, 0, 1.0, 2, 2, '{}', :t, 1, 0)"),
                  dict(js=settings.to_json(), t=now))
        c.execute(text("INSERT INTO job_styles VALUES (1, 0, 2)"))
    engine.dispose()

    store = open_store(url)
    queue = Queue(store)
    assert store_db.current_revision(store.database) == store_db.head_revision()
    result = store.get_result(1)
    assert (result.settings, result.losses, result.seconds) == (settings, {"total": 5.0}, 2.5)
    assert result.content.name == "content.png" and result.favourite is False
    assert store.blob(result.image_sha256) == data
    assert queue.get_job(1).result_id == 1 and store.count_gallery(GalleryFilter()) == 1
    # new features work on old rows: setting columns backfilled, tags, favourites, workers
    assert store.count_gallery(GalleryFilter(ranges={"style_weight": (2e4, 4e4)})) == 1
    store.set_tags(1, ["kept"])
    store.set_favourite(1)
    assert store.count_gallery(GalleryFilter(tags=("kept",), favourites_only=True)) == 1
    assert queue.list_workers() == []
    assert queue.get_batch(1).name == "old"
    raw = sqlite3.connect(tmp_path / "old.db")
    columns = {row[1] for row in raw.execute("PRAGMA table_info(jobs)")}
    assert {f"s_{f}" for f in INDEXED_FIELDS} <= columns
    for table in ("batches", "jobs", "results"):  # rebuilt so that ids are never reused
        (sql,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()
        assert "AUTOINCREMENT" in sql, table
    indexes = {row[1] for row in raw.execute("PRAGMA index_list(jobs)")}
    assert {"ix_jobs_claim", "ix_jobs_s_style_weight"} <= indexes  # kept through the rebuild


def store_db_sha(data: bytes) -> str:
    from nfx.store.blobs import sha256_of

    return sha256_of(data)


def test_postgres_schema_matches_models(postgres_url):  # noqa: F811
    store = open_store(postgres_url)
    engine = create_engine(postgres_url)
    with engine.connect() as connection:
        tables = set(connection.execute(text(
            "SELECT tablename FROM pg_tables WHERE schemaname = 'public'")).scalars())
    assert {"blobs", "images", "batches", "jobs", "job_styles", "results", "tags",
            "result_tags", "workers", "alembic_version"} <= tables
    assert store_db.current_revision(store.database) == store_db.head_revision()
    engine.dispose()


# --- people (#24): stars are each person's, the gallery by who queued it ----------------------


def test_stars_are_each_persons_own_and_tags_are_shared(store):
    from nfx.people import signed_in

    alice, bob = signed_in("alice@example.org"), signed_in("bob@example.org")
    queue = Queue(store)
    content, style = (store.add_image(png(1), "c.png", "content").id,
                      store.add_image(png(2, 36, 36), "s.png", "style").id)
    queue.create_batch([content], [style], TINY, {"seed": [1, 2]}, person=alice)
    queue.create_batch([content], [style], TINY, {"seed": [3]}, person=bob)
    while finish_next(store) is not None:
        pass
    cards = store.query_gallery(GalleryFilter(sort="id", descending=False))
    first = cards[0].result_id
    store.set_favourite(first, person=bob)
    store.set_tags(first, ["shared"])
    assert store.get_result(first, viewer=bob.name).favourite
    assert not store.get_result(first, viewer=alice.name).favourite
    assert store.get_result(first, viewer=alice.name).tags == ("shared",)
    assert store.count_gallery(GalleryFilter(favourites_only=True, viewer=bob.name)) == 1
    assert store.count_gallery(GalleryFilter(favourites_only=True, viewer=alice.name)) == 0
    shown = store.query_gallery(GalleryFilter(viewer=bob.name, sort="id", descending=False))
    assert [c.favourite for c in shown] == [True, False, False]
    assert [c.owner for c in shown] == [alice.name, alice.name, bob.name]
    assert store.owners() == [alice.name, bob.name]
    assert store.count_gallery(GalleryFilter(owners=(alice.name,))) == 2
    assert store.count_gallery(GalleryFilter(owners=(bob.name,))) == 1
    store.set_favourite(first, False, person=bob)
    assert store.count_gallery(GalleryFilter(favourites_only=True, viewer=bob.name)) == 0


@pytest.mark.parametrize("sent, kept", [("../../etc/passwd.png", "passwd.png"),
                                        ("C:\\\\Users\\\\me\\\\photo.png", "photo.png"),
                                        ("..\x00\n.png", "png"), ("/", "image")])
def test_an_uploads_name_is_a_label_never_a_path(store, sent, kept):
    assert store.add_image(png(5), sent, "content").name == kept


def test_a_database_at_0007_upgrades_with_its_rows_owned_by_local(db_url, tmp_path):
    engine = store_db.create_db_engine(db_url)
    store_db.migrate(engine, "0007")
    data, thumb = png(1), png(9, 8, 8)
    now = datetime(2026, 1, 5, 9, 0)
    with engine.begin() as c:  # what NFX wrote at 0007: a star on the result itself
        for digest, blob in ((store_db_sha(data), data), (store_db_sha(thumb), thumb)):
            c.execute(text("INSERT INTO blobs (sha256, data, size, created_at) "
                           "VALUES (:s, :d, :n, :t)"),
                      dict(s=digest, d=blob, n=len(blob), t=now))
        for image_id, role in ((1, "content"), (2, "style")):
            c.execute(text("INSERT INTO images (id, sha256, thumb_sha256, name, role, width, "
                           "height, added_at) VALUES (:i, :s, :th, :n, :r, 40, 32, :t)"),
                      dict(i=image_id, s=store_db_sha(data), th=store_db_sha(thumb),
                           n=f"{role}.png", r=role, t=now))
        c.execute(text("INSERT INTO batches (id, name, base_settings_json, sweep, created_at) "
                       "VALUES (1, 'old', :s, '{}', :t)"), dict(s=TINY.to_json(), t=now))
        for result_id, starred in ((1, True), (2, False)):
            c.execute(text("INSERT INTO results (id, job_id, image_sha256, thumb_sha256, "
                           "width, height, losses, history, seconds, device, precision, "
                           "resumed_from_scale, created_at, favourite) VALUES (:i, :i, :s, "
                           ":th, 40, 32, '{}', '[]', 1.0, 'cpu', 'fp32', 0, :t, :f)"),
                      dict(i=result_id, s=store_db_sha(data), th=store_db_sha(thumb), t=now,
                           f=starred))
            c.execute(text("INSERT INTO jobs (id, batch_id, content_id, settings_json, "
                           "input_digest, force, status, priority, attempts, max_attempts, "
                           "cancel_requested, progress, iteration, total_iterations, losses, "
                           "created_at, result_id, reused) VALUES (:i, 1, 1, :js, :d, false, "
                           "'done', 0, 1, 3, false, 1.0, 2, 2, '{}', :t, :i, false)"),
                      dict(i=result_id, js=TINY.to_json(), d=f"digest{result_id}", t=now))
            c.execute(text("INSERT INTO job_styles VALUES (:i, 0, 2)"), dict(i=result_id))
        if engine.dialect.name == "postgresql":  # as if NFX's own inserts had taken the ids
            for table in ("images", "batches", "jobs", "results"):
                c.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), "
                               f"(SELECT max(id) FROM {table}))"))
    engine.dispose()

    store = open_store(db_url)
    try:
        queue = Queue(store)
        assert store_db.current_revision(store.database) == store_db.head_revision()
        assert queue.get_batch(1).owner == "local"
        assert {j.owner for j in queue.list_jobs()} == {"local"}
        assert [store.get_result(i).owner for i in (1, 2)] == ["local", "local"]
        assert [store.get_result(i).favourite for i in (1, 2)] == [True, False]  # local's star
        assert not store.get_result(1, viewer="alice@example.org").favourite
        assert store.count_gallery(GalleryFilter(favourites_only=True)) == 1
        queue.create_batch([1], [2], TINY.with_changes(seed=5))
        assert queue.list_batches()[0].id == 2
        if db_url.startswith("sqlite"):  # the rebuilt results table still never reuses ids
            raw = sqlite3.connect(store_db.sqlite_path(db_url))
            (sql,) = raw.execute("SELECT sql FROM sqlite_master WHERE name = 'results'"
                                 ).fetchone()
            assert "AUTOINCREMENT" in sql and "favourite" not in sql
            raw.close()
        store.delete_result(2)
        claim = queue.claim_next("w")
        assert queue.finish(claim, *synthetic_run(claim)) == 3  # never 2 again
    finally:
        store.close()
