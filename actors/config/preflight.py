"""Start-up checks that need the backends themselves, run before Ray starts: a setting that
parses but cannot work (a warehouse option, a missing subscription) fails here with one line
naming its variable, not as replica tracebacks or as a failure after a job's work is done
(download links that cannot be signed). The checks are the consumer's readiness checks
(:func:`~actors.job.readiness.check_backends`): what ``/readyz`` would report, refused at start."""

from __future__ import annotations

from actors.config.settings import ConfigError, Settings
from actors.job.readiness import check_backends, first_line
from actors.queue import open_queue
from actors.storage import open_storage

CHECK_TIMEOUT = 10.0
VARIABLES = {"warehouse": "REPORTS_WAREHOUSE_URL", "queue": "REPORTS_QUEUE_URL", "storage": "REPORTS_STORAGE_URL"}


def preflight(settings: Settings) -> None:
    """Raise ConfigError for the first backend that cannot be used as configured."""
    try:
        queue = open_queue(settings.queue_url)
    except Exception as exc:  # e.g. no Google credentials for the client
        raise ConfigError(f"REPORTS_QUEUE_URL: {first_line(exc)}") from None
    try:
        storage = open_storage(settings.storage_url, settings.links)
    except Exception as exc:
        raise ConfigError(f"REPORTS_STORAGE_URL: {first_line(exc)}") from None
    try:
        report = check_backends(queue, storage, settings.warehouse_url, CHECK_TIMEOUT)
    finally:
        queue.close()
    for name, variable in VARIABLES.items():
        if report[name]:
            raise ConfigError(f"{variable}: {report[name]}")
