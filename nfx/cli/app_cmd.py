"""`python -m nfx app` and `python -m nfx workers`: processes that keep the queue moving.

The app only queues work; workers run it. `nfx app` starts the Streamlit app and supervised
workers from one command, so a new user gets a working app with one line; stopping it (Ctrl-C,
SIGTERM) stops the workers. `nfx workers N` is the same supervision without the app, for a
machine that only runs jobs.

The app listens on 127.0.0.1 unless `--host` says otherwise, and it is never exposed by
accident: a non-loopback address needs sign-in (`--auth FILE`, nfx.auth_file), or an explicit
`--insecure-no-auth`.
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import NoReturn

from nfx.auth_file import AUTH_FILE_VARIABLE, INSECURE_VARIABLE, AuthFile, read_auth_file
from nfx.cli.options import add_db_option
from nfx.errors import InputError
from nfx.limits import DEFAULT_MAX_QUEUED_JOBS, DEFAULT_MAX_UPLOAD_MB, AppLimits, checked_limits

APP_SCRIPT = Path(__file__).resolve().parents[2] / "streamlit_app.py"
# Streamlit's server over APP_SCRIPT, which keeps media from signed-out visitors
SERVER_SCRIPT = APP_SCRIPT.parent / "app_server.py"
SUPERVISE_EVERY_SECONDS = 0.5


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "app", help="run the web app with its queue worker(s)",
        description="Start the Streamlit app on 127.0.0.1 and supervised queue worker(s) "
                    "beside it (a worker that dies is restarted and its job requeued); "
                    "stopping the app stops the workers.")
    add_db_option(parser)
    parser.add_argument("--port", type=int, default=8501, help="port for the app (default 8501)")
    parser.add_argument("--host", default=LOOPBACK, metavar="ADDRESS",
                        help=f"address the app listens on (default {LOOPBACK}); any other "
                             "than a loopback one needs --auth")
    parser.add_argument("--auth", metavar="FILE", default=os.environ.get(AUTH_FILE_VARIABLE),
                        help="TOML file with Streamlit's [auth] section (sign-in through "
                             "OpenID Connect) and NFX's [nfx] admins (default: "
                             f"${AUTH_FILE_VARIABLE})")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="serve a non-loopback --host without sign-in: anyone who reaches "
                             "it may do anything (every page says so)")
    parser.add_argument("--max-upload-mb", type=int, default=DEFAULT_MAX_UPLOAD_MB,
                        metavar="MB", help="largest upload, a file (default "
                                           f"{DEFAULT_MAX_UPLOAD_MB})")
    parser.add_argument("--max-queued-jobs", type=int, default=DEFAULT_MAX_QUEUED_JOBS,
                        metavar="N", help="queued jobs one person may have at once (default "
                                          f"{DEFAULT_MAX_QUEUED_JOBS}; 0: no cap)")
    _add_worker_options(parser, default_count=1)
    parser.set_defaults(func=run_app)

    workers = subparsers.add_parser(
        "workers", help="run N supervised workers (no app)",
        description="Keep N workers running on this machine: a worker that dies is restarted "
                    "with backoff, its job requeued, and the cause logged here and in the "
                    "workers table.")
    workers.add_argument("count", type=int, nargs="?", default=1, metavar="N",
                         help="number of workers (default 1)")
    add_db_option(workers)
    _add_worker_options(workers, default_count=None)
    workers.set_defaults(func=run_workers)


def _add_worker_options(parser: argparse.ArgumentParser, default_count: int | None) -> None:
    if default_count is not None:
        parser.add_argument("--workers", type=int, default=default_count,
                            help=f"number of worker processes (default {default_count}; "
                                 "0 runs none)")
    parser.add_argument("--device", default="auto",
                        help="device for the workers: auto, cpu, cuda, cuda:1, mps")


LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """Whether only this machine can reach an address ("localhost", 127.0.0.0/8, ::1)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False  # a host name: it may resolve to anything


def app_access(host: str, auth: str | None, insecure: bool) -> AuthFile | None:
    """The auth file to serve `host` with (checked now, in one line); InputError for a
    non-loopback address without sign-in, saying how to configure it."""
    found = read_auth_file(auth) if auth else None
    if found is None and not insecure and not is_loopback(host):
        raise InputError(f"--host {host} would open the app to anyone who can reach it: "
                         "configure sign-in with --auth FILE (or $NFX_AUTH_FILE; see the "
                         "README, “Sharing NFX with a team”), or pass --insecure-no-auth")
    return found


def child_environment(db_url: str | None, auth: AuthFile | None = None,
                      insecure: bool = False, limits: AppLimits | None = None
                      ) -> dict[str, str]:
    """The environment for the app and the workers: the same database for all of them, and
    for the app the auth file, whether it runs open on purpose, and its limits."""
    env = dict(os.environ)
    if db_url:
        env["NFX_DATABASE_URL"] = db_url
    env.pop(AUTH_FILE_VARIABLE, None)
    env.pop(INSECURE_VARIABLE, None)
    if auth is not None:
        env[AUTH_FILE_VARIABLE] = str(auth.path)
    elif insecure:
        env[INSECURE_VARIABLE] = "1"
    env.update((limits or AppLimits()).environment())
    env.setdefault("STREAMLIT_BROWSER_GATHER_USAGE_STATS", "false")
    return env


def worker_command(db_url: str | None, device: str) -> list[str]:
    command = [sys.executable, "-m", "nfx", "worker", "--device", device]
    return command + (["--db", db_url] if db_url else [])


def streamlit_command(port: int, host: str = LOOPBACK, auth: AuthFile | None = None,
                      limits: AppLimits | None = None) -> list[str]:
    """`streamlit run` of the app; the auth file is its only secrets file (st.login reads
    [auth] there), and Streamlit's own upload limit is the app's."""
    command = [sys.executable, "-m", "streamlit", "run", str(SERVER_SCRIPT),
               "--server.headless", "true", "--server.address", host,
               "--server.port", str(port),
               "--server.maxUploadSize", str((limits or AppLimits()).max_upload_mb)]
    if auth is not None:
        command += ["--secrets.files", str(auth.path)]
    return command  # the rest: .streamlit/config.toml


def _die_with_parent() -> None:
    """Linux: the worker gets SIGTERM if this process dies without stopping it (SIGKILL)."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_worker(db_url: str | None, device: str, env: dict[str, str]
                 ) -> subprocess.Popen[bytes]:
    """A worker in its own session: Ctrl-C or a signal to this process group reaches only us,
    and we pass on exactly one SIGTERM (a worker takes a second signal as "die now", which
    would leave its job marked running until the lease runs out)."""
    return subprocess.Popen(worker_command(db_url, device), env=env, cwd=APP_SCRIPT.parent,
                            start_new_session=True, preexec_fn=_die_with_parent)


def _supervise(args: argparse.Namespace, count: int, keep_going: Callable[[], int | None]
               ) -> int:
    """Run `count` supervised workers while keep_going() is true; stop them all after."""
    from nfx.queue import open_queue
    from nfx.queue.supervisor import Supervisor

    env = child_environment(args.db)
    queue = open_queue(args.db)  # fails here, in one line, if the database is unusable

    # turn SIGTERM into the same clean stop as Ctrl-C
    def on_terminate(signum: int, frame: FrameType | None) -> NoReturn:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_terminate)
    supervisor = Supervisor(count, lambda: start_worker(args.db, args.device, env), queue)
    try:
        supervisor.start()
        while (code := keep_going()) is None:
            supervisor.poll()
            time.sleep(SUPERVISE_EVERY_SECONDS)
        return code
    except KeyboardInterrupt:
        return 0
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        supervisor.stop()
        queue.store.close()
        signal.signal(signal.SIGTERM, previous)


def run_app(args: argparse.Namespace) -> int:
    auth = app_access(args.host, args.auth, args.insecure_no_auth)
    limits = checked_limits(args.max_upload_mb, args.max_queued_jobs)
    env = child_environment(args.db, auth, args.insecure_no_auth, limits)
    app: subprocess.Popen[bytes] | None = None

    def app_running() -> int | None:
        nonlocal app
        if app is None:
            app = subprocess.Popen(streamlit_command(args.port, args.host, auth, limits),
                                   env=env, cwd=APP_SCRIPT.parent)
            shown = f"[{args.host}]" if ":" in args.host else args.host
            sign_in = (f"sign-in by {auth.path.name}" if auth else
                       "NO SIGN-IN: open to anyone who reaches it" if args.insecure_no_auth
                       else "no sign-in (this machine only)")
            print(f"nfx: app on http://{shown}:{args.port} ({sign_in}) with "
                  f"{max(args.workers, 0)} supervised worker(s)", file=sys.stderr, flush=True)
        return app.poll()

    try:
        return _supervise(args, args.workers, app_running)
    finally:
        if app is not None and app.poll() is None:
            app.terminate()
            try:
                app.wait(timeout=10)
            except subprocess.TimeoutExpired:
                app.kill()


def run_workers(args: argparse.Namespace) -> int:
    if args.count < 1:
        raise InputError("N must be at least 1")
    print(f"nfx: {args.count} supervised worker(s); Ctrl-C stops them", file=sys.stderr,
          flush=True)
    return _supervise(args, args.count, lambda: None)
