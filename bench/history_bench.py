"""What listing a requester's 20 newest jobs costs, with and without other users' jobs beside
theirs, on file:// and on gs:// (fake-gcs-server), side by side in one run.

    .venv/bin/python bench/history_bench.py [--others 10000] [--gcs-others 2000] [--repeat 15]

For each backend: a fresh store, the requester's 25 jobs, then ``GET /institution/reports/jobs``'s
ledger call (``Ledger.jobs_of``, limit 20) timed ``--repeat`` times; then ``--others`` jobs of
other users (200 institutions, 2,000 users, each job recorded as a request is: index entries,
then the record) and the same timing again. The ratio with ÷ without is the point: 1.0 means
other users' jobs cost the requester nothing. Medians, since the machine is shared.
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


def timed(ledger: Ledger, repeat: int) -> list[float]:
    took = []
    for _ in range(repeat):
        started = time.perf_counter()
        found, _ = ledger.jobs_of(*ME, limit=20)
        took.append(time.perf_counter() - started)
        assert len(found) == 20
    return took


def measure(name: str, url: str, others: int, repeat: int) -> dict:
    ledger = Ledger(open_storage(url, LinkOptions(secret="b" * 32)))
    now = utcnow()
    for i in range(25):
        ledger.create(job(*ME, now - timedelta(minutes=25 - i)))
    alone = timed(ledger, repeat)
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:  # other users' requests, as many replicas would write them
        list(pool.map(lambda i: ledger.create(job(2 + i % 200, 100 + i % 2000, now - timedelta(seconds=i))),
                      range(others)))  # fmt: skip
    seeded = time.perf_counter() - started
    crowded = timed(ledger, repeat)
    return {"backend": name, "others": others, "alone": alone, "crowded": crowded, "seeded_s": seeded}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--others", type=int, default=10_000, help="other users' jobs added to the ledger")
    parser.add_argument("--gcs-others", type=int, default=2_000, help="the same on fake-gcs-server")
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    results = []
    with tempfile.TemporaryDirectory(prefix="history-bench-") as tmp:
        results.append(measure("file://", f"file://{tmp}/files", args.others, args.repeat))
        binary = fake_gcs_binary()
        gcs = FakeGcs(binary, free_port(), Path(tmp) / "fake-gcs.log")
        gcs.start()
        try:
            gcs.create_bucket(BUCKET)
            os.environ["STORAGE_EMULATOR_HOST"] = gcs.url
            results.append(measure("gs:// (fake-gcs-server)", f"gs://{BUCKET}/bench", args.gcs_others, args.repeat))
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
