"""Start-up checks that need the backends themselves, run before Ray starts: a setting that
parses but cannot work (a warehouse option, a missing subscription) fails here with one line
naming its variable, not as replica tracebacks or as a failure after a job's work is done
(download links that cannot be signed)."""

from __future__ import annotations

from actors.queue import QueueUnavailable, open_queue
from actors.settings import ConfigError, Settings
from actors.storage import LinkUnavailable, open_storage
from actors.warehouse import open_warehouse

CHECK_TIMEOUT = 10.0


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def preflight(settings: Settings) -> None:
    """Raise ConfigError for the first backend that cannot be used as configured."""
    try:
        open_warehouse(settings.warehouse_url).close()  # parses the options and connects
    except Exception as exc:
        raise ConfigError(f"REPORTS_WAREHOUSE_URL: {_first_line(exc)}") from None
    try:
        queue = open_queue(settings.queue_url)
    except Exception as exc:  # e.g. no Google credentials for the client
        raise ConfigError(f"REPORTS_QUEUE_URL: {_first_line(exc)}") from None
    try:
        queue.check(CHECK_TIMEOUT)
    except QueueUnavailable as exc:
        raise ConfigError(f"REPORTS_QUEUE_URL: {exc}") from None
    finally:
        queue.close()
    try:
        open_storage(settings).check_links()
    except LinkUnavailable as exc:
        raise ConfigError(f"REPORTS_STORAGE_URL: {exc}") from None
    except Exception as exc:  # e.g. no Google credentials for the client
        raise ConfigError(f"REPORTS_STORAGE_URL: {_first_line(exc)}") from None
