"""`python -m nfx app`: the Streamlit app with its queue worker(s) beside it.

The app only queues work; workers run it. Starting both from one command means a new user
gets a working app with one line, and stopping the app (Ctrl-C, SIGTERM) stops the workers.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
from pathlib import Path

from nfx.cli.options import add_db_option

APP_SCRIPT = Path(__file__).resolve().parents[2] / "streamlit_app.py"
STOP_GRACE_SECONDS = 10


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="run the web app with its queue worker(s)",
        description="Start the Streamlit app on 127.0.0.1 and queue worker(s) beside it; "
                    "stopping the app stops the workers.")
    add_db_option(parser)
    parser.add_argument("--port", type=int, default=8501, help="port for the app (default 8501)")
    parser.add_argument("--workers", type=int, default=1,
                        help="number of worker processes (default 1; 0 runs none)")
    parser.add_argument("--device", default="auto",
                        help="device for the workers: auto, cpu, cuda, cuda:1, mps")
    parser.set_defaults(func=run_app)


def child_environment(db_url: str | None) -> dict[str, str]:
    """The environment for the app and the workers: the same database for all of them."""
    env = dict(os.environ)
    if db_url:
        env["NFX_DATABASE_URL"] = db_url
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    return env


def worker_command(db_url: str | None, device: str) -> list[str]:
    command = [sys.executable, "-m", "nfx", "worker", "--device", device]
    return command + (["--db", db_url] if db_url else [])


def streamlit_command(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", str(APP_SCRIPT),
            "--server.headless", "true", "--server.address", "127.0.0.1",
            "--server.port", str(port), "--client.toolbarMode", "minimal"]


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if this process dies without stopping it (SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_worker(db_url: str | None, device: str, env: dict[str, str]) -> subprocess.Popen:
    """A worker in its own session: Ctrl-C or a signal to this process group reaches only us,
    and we pass on exactly one SIGTERM (a worker takes a second signal as "die now", which
    would leave its job marked running until the lease runs out)."""
    return subprocess.Popen(worker_command(db_url, device), env=env, cwd=APP_SCRIPT.parent,
                            start_new_session=True, preexec_fn=_die_with_parent)


def _stop(processes: list[subprocess.Popen]) -> None:
    """SIGTERM (workers finish or requeue their job), then SIGKILL what is left."""
    for process in processes:
        if process.poll() is None:
            process.terminate()
    for process in processes:
        try:
            process.wait(timeout=STOP_GRACE_SECONDS)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def run_app(args: argparse.Namespace) -> int:
    env = child_environment(args.db)
    workers: list[subprocess.Popen] = []
    app: subprocess.Popen | None = None

    def on_terminate(signum, frame):  # turn SIGTERM into the same clean stop as Ctrl-C
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_terminate)
    try:
        workers = [start_worker(args.db, args.device, env) for _ in range(max(args.workers, 0))]
        app = subprocess.Popen(streamlit_command(args.port), env=env, cwd=APP_SCRIPT.parent)
        print(f"nfx: app on http://127.0.0.1:{args.port} with {len(workers)} worker(s)",
              file=sys.stderr, flush=True)
        return app.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        _stop(([app] if app else []) + workers)
        signal.signal(signal.SIGTERM, previous)
