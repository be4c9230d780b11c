"""What the tests share: small real images made in code, TINY settings, a SQLite file, the
real engine (loaded once), the PostgreSQL server (tests/postgres_fixture.py), and the helpers
that run `python -m nfx` and its workers as a user would.

Markers (pytest.ini): `browser` (a real Chromium), `postgres` (a real PostgreSQL server, set
on every test that uses one), `slow` (longer than a few seconds): `pytest -m "not slow"` is
the quick loop; CI runs everything.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sqlalchemy import func, select

from nfx.settings import Settings

pytest_plugins = ["postgres_fixture"]

ROOT = Path(__file__).resolve().parent.parent
# The one set of tiny settings: a few iterations at 32 px, in fp32 (exact, machine-independent)
TINY = Settings(size=32, scales=1, steps=2, precision="fp32")
ENV = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
LEASE = "1.5"  # a worker's lease in tests: short, so that a killed worker's job comes back


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Every test that uses the PostgreSQL server is marked `postgres`."""
    for item in items:
        if {"postgres_server", "own_postgres"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)


def make_image(width: int, height: int, seed: int = 0, mode: str = "RGB") -> Image.Image:
    """A smooth random picture with structure at several scales (a real test input)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(width, height)
    channels = []
    for _ in range(3):
        fx, fy, phase = rng.uniform(2, 12, size=3)
        channels.append(np.sin(fx * x * 6.28 + phase) * np.cos(fy * y * 6.28) * 0.5 + 0.5)
    array = (np.stack(channels, axis=-1) * 255).astype(np.uint8)
    return Image.fromarray(array, "RGB").convert(mode)


def image_bytes(image: Image.Image, fmt: str = "PNG", **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def synthetic_run(claim, *, total: float = 1.0, seconds: float = 0.5, size=(32, 24),
                  history=None):
    """A finished run of a claimed job with a made-up picture (for testing the store and the
    queue without the engine): the arguments of `queue.finish` after the claim."""
    from nfx.images import thumbnail_bytes
    from nfx.run_record import RunRecord, run_png

    picture = make_image(*size, seed=claim.job_id)
    run = RunRecord(image=picture, settings=claim.settings,
                    losses={"content": 1.0, "style": 2.0, "tv": 0.1, "total": total},
                    history=history if history is not None else [{"iteration": 1,
                                                                   "total": total}],
                    seconds=seconds, device="cpu", precision="fp32")
    return run, run_png(run, claim.content, claim.styles), thumbnail_bytes(picture, 64)


def add_pair(store, seed: int = 1) -> tuple[int, int]:
    """A content (48×32) and a style (40×40) picture in the library: their ids."""
    content = store.add_image(image_bytes(make_image(48, 32, seed)), "c.png", "content").id
    style = store.add_image(image_bytes(make_image(40, 40, seed + 1)), "s.png", "style").id
    return content, style


def queue_one(store, settings, seed: int = 1) -> int:
    """One job of a fresh pair (add_pair) with `settings`, queued: its id."""
    from nfx.queue import Queue

    queue = Queue(store)
    content, style = add_pair(store, seed)
    queue.create_batch([content], [style], settings)
    return queue.list_jobs()[0].id


def result_count(store) -> int:
    from nfx.store.models import Result

    with store.read() as session:
        return session.scalar(select(func.count()).select_from(Result))


def run_nfx(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """`python -m nfx ARGS`, as a user runs it."""
    return subprocess.run([sys.executable, "-m", "nfx", *args], cwd=ROOT, env=ENV,
                          capture_output=True, text=True, timeout=timeout)


def start_worker(url: str, *args: str, lease: str = LEASE) -> subprocess.Popen:
    """`python -m nfx worker` in its own process."""
    # --no-calibrate: the speed measurement has its own test; here it would only cost time
    return subprocess.Popen([sys.executable, "-m", "nfx", "worker", "--db", url, "--device",
                             "cpu", "--poll", "0.2", "--lease", lease, "--no-calibrate", *args],
                            cwd=ROOT, env=ENV, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def wait_exit(process: subprocess.Popen, timeout: float) -> str:
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
        pytest.fail(f"worker did not finish in {timeout}s:\n{output}")
    assert process.returncode == 0, output
    return output


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture
def content_image() -> Image.Image:
    return make_image(48, 32, seed=1)


@pytest.fixture
def style_image() -> Image.Image:
    return make_image(40, 40, seed=2)


@pytest.fixture
def sqlite_url(tmp_path) -> str:
    return f"sqlite:///{tmp_path / 'nfx.db'}"


@pytest.fixture(scope="session")
def engine():
    """The real engine on the CPU, with the real VGG-19 weights: loaded once for all tests."""
    from nfx.engine import Engine

    return Engine(device="cpu")


# --- colour profiles: a minimal ICC v2 matrix/TRC display profile, written here ----------------

DISPLAY_P3 = ((0.5151, 0.2412, -0.0011), (0.2920, 0.6922, 0.0419), (0.1571, 0.0666, 0.7841))
SRGB_D50 = ((0.4361, 0.2225, 0.0139), (0.3851, 0.7169, 0.0971), (0.1431, 0.0606, 0.7141))


def _s15(value: float) -> bytes:
    import struct
    return struct.pack(">i", int(round(value * 65536)))


def icc_profile(name: str, primaries=DISPLAY_P3, gamma: float = 2.2) -> bytes:
    """An RGB display profile (ICC v2: primaries as D50 XYZ, one gamma): what a phone or a
    scanner embeds, made here so no profile file is needed."""
    import struct

    def xyz(value):
        return b"XYZ " + b"\0" * 4 + b"".join(_s15(c) for c in value)

    def curve():
        return b"curv" + b"\0" * 4 + struct.pack(">IH", 1, int(round(gamma * 256))) + b"\0\0"

    def text(value: str):
        ascii_ = value.encode("ascii") + b"\0"
        body = (b"desc" + b"\0" * 4 + struct.pack(">I", len(ascii_)) + ascii_
                + struct.pack(">IIHB", 0, 0, 0, 0) + b"\0" * 67)
        return body + b"\0" * (-len(body) % 4)

    red, green, blue = primaries
    tags = [(b"desc", text(name)), (b"wtpt", xyz((0.9642, 1.0, 0.8249))), (b"rXYZ", xyz(red)),
            (b"gXYZ", xyz(green)), (b"bXYZ", xyz(blue)), (b"rTRC", curve()), (b"gTRC", curve()),
            (b"bTRC", curve()), (b"cprt", text("test"))]
    offset, table, data = 128 + 4 + 12 * len(tags), b"", b""
    for signature, body in tags:
        table += signature + struct.pack(">II", offset + len(data), len(body))
        data += body
    header = (struct.pack(">I", offset + len(data)) + b"\0" * 4 + struct.pack(">I", 0x02100000)
              + b"mntrRGB XYZ " + b"\0" * 12 + b"acsp" + b"\0" * 28
              + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    return header + struct.pack(">I", len(tags)) + table + data


def to_srgb_by_hand(pixel, primaries=DISPLAY_P3, gamma: float = 2.2) -> np.ndarray:
    """A pixel of that profile in sRGB, by the colorimetry alone (no colour management)."""
    linear = (np.asarray(pixel, dtype=float) / 255) ** gamma
    srgb = np.clip(np.linalg.solve(np.array(SRGB_D50).T, np.array(primaries).T @ linear), 0, 1)
    return np.where(srgb <= 0.0031308, 12.92 * srgb, 1.055 * srgb ** (1 / 2.4) - 0.055) * 255


def write_auth_file(path: Path, app_port: int = 8501, provider_port: int = 9400,
                    admins: tuple[str, ...] = (), **changes: str | None) -> Path:
    """An auth file as the README shows it: Streamlit's [auth] for one OpenID Connect
    provider on a loopback port, and NFX's admins; `changes` replace (or, None, drop) a key
    of [auth]."""
    auth = {"redirect_uri": f"http://127.0.0.1:{app_port}/oauth2callback",
            "cookie_secret": "a-cookie-secret-for-the-tests-only",
            "client_id": "nfx", "client_secret": "nfx-test-secret",
            "server_metadata_url": f"http://127.0.0.1:{provider_port}/.well-known/"
                                   "openid-configuration"}
    auth.update(changes)
    lines = ["[auth]"] + [f'{key} = "{value}"' for key, value in auth.items()
                          if value is not None]
    lines += ["", "[nfx]", "admins = [" + ", ".join(f'"{a}"' for a in admins) + "]"]
    path.write_text("\n".join(lines) + "\n")
    return path
