"""`python -m nfx batch | list | cancel | retry | export | worker`: the queue from the command
line."""

from __future__ import annotations

import argparse
import json
import sys
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pandas as pd

from nfx.regions import RegionMap
from nfx.cli.options import (add_db_option, add_region_option, add_settings_options,
                             settings_from_args)
from nfx.errors import InputError, NFXError
from nfx.settings import FIELDS, parse_sweep
from nfx.store.export import loss_columns
from nfx.queue.jobs import DEFAULT_LEASE_SECONDS, DEFAULT_POLL_SECONDS
from nfx.queue.records import JobRecord
from nfx.status import STATUSES


def register(subparsers: argparse._SubParsersAction) -> None:
    batch = subparsers.add_parser(
        "batch", help="queue contents × styles × sweeps",
        description="Queue one job per content image, style image and combination of swept "
                    "values. Jobs identical to a finished one reuse its result unless --force.")
    batch.add_argument("--content", nargs="+", required=True, metavar="IMAGE[:MASK]",
                       help="content images; PHOTO:MASK gives a photo a mask of regions, "
                            "whose colours --region assigns to the --style images by number")
    batch.add_argument("--style", nargs="+", required=True, metavar="IMAGE")
    add_region_option(batch, " (every masked photo's)")
    batch.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2",
                       help="several values for one setting (repeatable), e.g. "
                            "style_weight=1e4,1e5,1e6")
    batch.add_argument("--name", default=None, help="a name for the batch")
    batch.add_argument("--priority", type=int, default=0, help="higher runs first")
    batch.add_argument("--force", action="store_true",
                       help="run jobs again even if an identical run finished")
    add_db_option(batch)
    add_settings_options(batch)
    batch.set_defaults(func=run_batch)

    listing = subparsers.add_parser("list", help="list jobs with settings, losses and time")
    listing.add_argument("--status", nargs="+", choices=[str(s) for s in STATUSES],
                         default=None)
    listing.add_argument("--batch", type=int, default=None, metavar="ID")
    listing.add_argument("--limit", type=int, default=None, help="at most this many jobs")
    listing.add_argument("--format", choices=("json", "csv"), default="json")
    add_db_option(listing)
    listing.set_defaults(func=run_list)

    for verb, text in (("cancel", "cancel queued or running jobs (a running one stops within "
                                  "a few iterations)"),
                       ("retry", "queue failed or canceled jobs again, from the start")):
        action = subparsers.add_parser(verb, help=text, description=text.capitalize() + ".")
        action.add_argument("job_ids", type=int, nargs="+", metavar="JOB")
        add_db_option(action)
        action.set_defaults(func=run_job_action, verb=verb)

    export = subparsers.add_parser("export", help="a batch's PNGs and settings.csv as a ZIP")
    export.add_argument("batch_id", type=int, metavar="BATCH_ID")
    export.add_argument("-o", "--output", required=True, metavar="ZIP")
    add_db_option(export)
    export.set_defaults(func=run_export)

    worker = subparsers.add_parser(
        "worker", help="run queued jobs",
        description="Claim and run queued jobs until stopped (SIGTERM/Ctrl-C puts the running "
                    "job back in the queue). Several workers may share one database.")
    add_db_option(worker)
    worker.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:1, mps")
    worker.add_argument("--max-jobs", type=int, default=None, metavar="N",
                        help="stop after N jobs")
    worker.add_argument("--once", action="store_true",
                        help="stop when nothing is left queued or running")
    worker.add_argument("--name", default=None, help="worker name (default host-pid)")
    worker.add_argument("--lease", type=float, default=DEFAULT_LEASE_SECONDS,
                        metavar="SECONDS",
                        help="a job whose worker is silent this long is requeued (default "
                             f"{DEFAULT_LEASE_SECONDS:g})")
    worker.add_argument("--poll", type=float, default=DEFAULT_POLL_SECONDS,
                        metavar="SECONDS", help="pause between looks at an empty queue "
                                                f"(default {DEFAULT_POLL_SECONDS:g})")
    worker.add_argument("--no-calibrate", dest="calibrate", action="store_false",
                        help="skip measuring this device's speed at start (time estimates "
                             "then come from finished jobs only)")
    worker.set_defaults(func=run_worker_cmd)


def _read(path: str) -> tuple[str, bytes]:
    file = Path(path)
    if not file.is_file():
        raise InputError(f"{path}: file not found")
    return file.name, file.read_bytes()


def _photo_and_mask(text: str) -> tuple[str, str | None]:
    """'photo.jpg:mask.png' -> (photo, mask); a path that is a file as given (a colon in its
    name, a Windows drive) is a photo alone."""
    photo, sep, mask = text.rpartition(":")
    if not sep or Path(text).is_file() or not photo:
        return text, None
    return photo, mask


def run_batch(args: argparse.Namespace) -> int:
    from nfx.queue import open_queue

    base = settings_from_args(args)
    sweep: dict[str, list[Any]] = {}
    for text in args.sweep:
        name, values = parse_sweep(text)
        if name in sweep:
            raise InputError(f"{name} is swept twice")
        sweep[name] = values
    photos = [_photo_and_mask(p) for p in args.content]
    contents = [_read(photo) for photo, _ in photos]
    masks = {i: _read(mask) for i, (_, mask) in enumerate(photos) if mask is not None}
    if args.regions and not masks:
        raise InputError("--region needs a mask: give --content PHOTO:MASK")
    regions = RegionMap.parse(args.regions) if args.regions else None
    styles = [_read(p) for p in args.style]
    batch = open_queue(args.db).create_batch_from_uploads(contents, styles, base, sweep,
                                                          name=args.name, force=args.force,
                                                          priority=args.priority, masks=masks,
                                                          regions=regions)
    print(f"batch {batch.id}: {batch.job_count} jobs queued"
          + (f" ({batch.reused_count} reused from earlier runs)" if batch.reused_count else ""))
    return 0


def jobs_table(jobs: Iterable[JobRecord]) -> pd.DataFrame:
    rows = []
    for job in jobs:
        row = {"job_id": job.id, "batch_id": job.batch_id, "status": job.status,
               "priority": job.priority, "attempts": job.attempts, "content": job.content_name,
               "styles": ";".join(job.style_names), "mask": job.mask_name,
               "regions": job.regions.text() if job.regions else None,
               "result_id": job.result_id,
               "reused": job.reused, "seconds": job.seconds, "error": job.error,
               "owner": job.owner}
        values = job.settings.model_dump(mode="json")
        row.update({name: values[name] for name in FIELDS})
        row.update(loss_columns(job.losses))
        rows.append(row)
    return pd.DataFrame(rows)


def run_list(args: argparse.Namespace) -> int:
    from nfx.queue import open_queue

    jobs = open_queue(args.db).list_jobs(status=args.status, batch_id=args.batch,
                                         limit=args.limit)
    table = jobs_table(jobs)
    if args.format == "csv":
        for name in FIELDS:  # lists as "a,b" like the CLI takes them
            if name in table:
                table[name] = [FIELDS[name].format(v) for v in table[name]]
        table.to_csv(sys.stdout, index=False)
    else:
        print(json.dumps(json.loads(table.to_json(orient="records")), indent=2))
    return 0


def run_job_action(args: argparse.Namespace) -> int:
    """Cancel or retry each job; one line per job, and exit 2 if any could not be."""
    from nfx.queue import open_queue

    queue = open_queue(args.db)
    action = queue.cancel_job if args.verb == "cancel" else queue.retry_job
    failed = 0
    for job_id in args.job_ids:
        try:
            job = action(job_id)
        except NFXError as exc:
            print(f"nfx: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        state = "cancel requested" if job.cancel_requested else str(job.status)
        print(f"job {job.id}: {state}")
    return 2 if failed else 0


def run_export(args: argparse.Namespace) -> int:
    from nfx.store import open_store

    output = Path(args.output)
    if not output.parent.is_dir():
        raise InputError(f"{output.parent}: no such folder")
    data = open_store(args.db).export_batch(args.batch_id)
    partial = output.with_name(output.name + ".part")
    partial.write_bytes(data)
    partial.replace(output)  # never a half-written ZIP under the real name
    print(f"{output}: {len(data) / 1e6:.1f} MB")
    return 0


def run_worker_cmd(args: argparse.Namespace) -> int:
    from nfx.queue.worker import WorkerOptions, install_stop_signals, run_worker

    if args.max_jobs is not None and args.max_jobs < 1:
        raise InputError("--max-jobs must be at least 1")
    if args.lease <= 0:
        raise InputError("--lease must be positive")
    stop = threading.Event()
    install_stop_signals(stop)
    outcomes = run_worker(args.db, WorkerOptions(device=args.device, name=args.name,
                                                 max_jobs=args.max_jobs, once=args.once,
                                                 lease=args.lease, poll=args.poll,
                                                 calibrate=args.calibrate),
                          stop=stop, log=lambda line: print(line, file=sys.stderr, flush=True))
    print(json.dumps(outcomes, sort_keys=True))
    return 0
