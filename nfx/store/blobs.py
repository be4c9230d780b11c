"""Content-addressed bytes: the key is the sha256, so storing the same picture twice is free."""

from __future__ import annotations

import hashlib

from sqlalchemy import delete, exists, or_, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from nfx.errors import InputError
from nfx.store.models import Blob, Image, Job, Result


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def put_blob(session: Session, data: bytes) -> str:
    """Store bytes once; returns their sha256.

    Two workers can store the same picture at the same moment (jobs whose settings differ
    only where the output does not, a seed with content init, say): the insert is
    'if absent' in the database itself, so the second one waits for the first and adds
    nothing, instead of failing on the primary key."""
    digest = sha256_of(data)
    if session.get(Blob, digest) is None:
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        session.execute(insert(Blob).values(sha256=digest, data=data, size=len(data))
                        .on_conflict_do_nothing(index_elements=[Blob.sha256]))
    return digest


def get_blob(session: Session, digest: str) -> bytes:
    data = session.scalar(select(Blob.data).where(Blob.sha256 == digest))
    if data is None:
        raise InputError(f"no stored image with sha256 {digest}")
    return data


def thumbnail_sha(session: Session, digest: str) -> str:
    """The thumbnail of an upload or a result, found by the full image's sha256."""
    thumb = session.scalar(select(Image.thumb_sha256).where(Image.sha256 == digest).limit(1))
    thumb = thumb or session.scalar(
        select(Result.thumb_sha256).where(Result.image_sha256 == digest).limit(1))
    if thumb is None:
        raise InputError(f"no thumbnail for sha256 {digest}")
    return thumb


def delete_unreferenced(session: Session, digests: set[str]) -> None:
    """Drop blobs that no image, result or job checkpoint points at any more."""
    for digest in digests:
        used = select(1).where(or_(
            exists().where(or_(Image.sha256 == digest, Image.thumb_sha256 == digest)),
            exists().where(or_(Result.image_sha256 == digest, Result.thumb_sha256 == digest)),
            exists().where(Job.checkpoint_sha256 == digest)))
        if session.scalar(used) is None:
            session.execute(delete(Blob).where(Blob.sha256 == digest))
