"""What listing a requester's 20 newest jobs costs, with and without other users' jobs beside
theirs, on file:// and on gs:// (fake-gcs-server), side by side in one run.

    .venv/bin/python bench/history_bench.py [--others 10000] [--gcs-others 2000] [--repeat 15]

For each backend: two fresh stores with the requester's same 25 jobs, one of them also holding
``--others`` jobs of other users (200 institutions, 2,000 users, each recorded as a request is:
index entries, then the record); ``GET /institution/reports/jobs``'s ledger call
(``Ledger.jobs_of``, limit 20) timed ``--repeat`` times on each, in alternation. The ratio with
÷ without is the point: 1.0 means other users' jobs cost the requester nothing. Medians, since the machine is shared.
fake-gcs-server's in-memory backend slows down with every object it holds, so seeding it with
10,000 jobs (30,000 objects) takes many minutes: ``--gcs-others`` sets its own count.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from actors.job.ledger import Ledger  # noqa: E402
from actors.job.message import CatalogJob, new_job_id, utcnow  # noqa: E402
from actors.job.state import JobState  # noqa: E402
from actors.storage import LinkOptions, open_storage  # noqa: E402
from tests.support.emulators import BUCKET, FakeGcs, fake_gcs_binary, free_port  # noqa: E402

ME = (1, 7)
ALONE_BUCKET = "reports-alone"


def job(institution_id: int, user_id: int, created: datetime) -> JobState:
    return JobState.accepted(
        CatalogJob(
            job_id=new_job_id(),
            institution_id=institution_id,
            user_id=user_id,
            subdomain="demo",
            start_date=date(2025, 1, 1),
            end_date=date(2025, 12, 31),
            timezone="America/Sao_Paulo",
            requested_at=created,
        )
    )


def once(ledger: Ledger) -> float:
    started = time.perf_counter()
    found, _ = ledger.jobs_of(*ME, limit=20)
    assert len(found) == 20
    return time.perf_counter() - started


def measure(name: str, alone_url: str, crowded_url: str, others: int, repeat: int) -> dict:
    """Two stores with the requester's same 25 jobs, one of them also holding ``others`` jobs of
    other users; timed in alternation after one warm-up each, so neither gets the colder turn."""
    alone, crowded = (Ledger(open_storage(url, LinkOptions(secret="b" * 32))) for url in (alone_url, crowded_url))
    now = utcnow()
    for i in range(25):
        mine = job(*ME, now - timedelta(minutes=25 - i))
        alone.create(mine)
        crowded.create(mine)
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:  # other users' requests, as many replicas would write them
        list(pool.map(lambda i: crowded.create(job(2 + i % 200, 100 + i % 2000, now - timedelta(seconds=i))),
                      range(others)))  # fmt: skip
    seeded = time.perf_counter() - started
    once(alone), once(crowded)
    took = []
    for i in range(repeat):  # which goes first alternates too
        if i % 2:
            c, a = once(crowded), once(alone)
        else:
            a, c = once(alone), once(crowded)
        took.append((a, c))
    return {"backend": name, "others": others, "alone": [a for a, _ in took], "crowded": [c for _, c in took],
            "seeded_s": seeded}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--others", type=int, default=10_000, help="other users' jobs added to the ledger")
    parser.add_argument("--gcs-others", type=int, default=2_000, help="the same on fake-gcs-server")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        results.append(measure("file://", f"file://{tmp}/alone", f"file://{tmp}/crowded", args.others, args.repeat))
        binary = fake_gcs_binary()
        gcs = FakeGcs(binary, free_port(), Path(tmp) / "fake-gcs.log")
        gcs.start()
        try:
            for bucket in (ALONE_BUCKET, BUCKET):  # a bucket each: the emulator scans a bucket's objects
                gcs.create_bucket(bucket)
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
            urls = (f"gs://{ALONE_BUCKET}/bench", f"gs://{BUCKET}/bench")
            results.append(measure("gs:// (fake-gcs-server)", *urls, args.gcs_others, args.repeat))
        finally:
            gcs.stop()

    print(f"\n{datetime.now():%Y-%m-%d %H:%M}, {platform.node()}, {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}; listing the requester's 20 newest of 25 jobs, "
          f"median of {args.repeat}\n")  # fmt: skip
    print("| backend | other users' jobs | alone, ms | with them, ms | ratio |")
    print("|---|---:|---:|---:|---:|")
    for r in results:
        alone, crowded = statistics.median(r["alone"]) * 1000, statistics.median(r["crowded"]) * 1000
        print(f"| {r['backend']} | {r['others']:,} | {alone:.1f} | {crowded:.1f} | {crowded / alone:.2f}× |")
    seeding = ", ".join(f"{r['seeded_s']:.0f} s" for r in results)
    print(f"\n(seeding the other jobs took {seeding})")


if __name__ == "__main__":
    main()
