"""Background work yields the CPU to the HTTP path.

Ray starts every worker process at one niceness (``RAY_worker_niceness``, 15 unless set), so by
default the API replicas and the proxy run as low as the actors that render reports, and lose
to any other busy process on the machine. The service starts its Ray with workers at 0 and the
processes that do bulk work (the job consumer, the render workers) lower themselves to
:data:`BACKGROUND`: under a burst of jobs, requests are answered first and reports use what is left.
"""

from __future__ import annotations

import os

BACKGROUND = 10
WORKER_NICENESS_ENV = "RAY_worker_niceness"


def as_background() -> None:
    """Lower every thread of this process to :data:`BACKGROUND` (never raises one: that needs
    privileges). Linux keeps a niceness per thread, and threads started later inherit it from
    the thread that starts them, so all of them are lowered, not only the caller."""
    if not os.path.isdir("/proc/self/task"):  # not Linux: niceness is per process
        os.nice(max(0, BACKGROUND - os.nice(0)))
        return
    for tid in os.listdir("/proc/self/task"):
        try:
            if os.getpriority(os.PRIO_PROCESS, int(tid)) < BACKGROUND:
                os.setpriority(os.PRIO_PROCESS, int(tid), BACKGROUND)
        except ProcessLookupError:  # the thread ended meanwhile
            pass


def workers_at_normal_priority() -> None:
    """For a Ray started by this process: workers at niceness 0 unless the operator chose."""
    os.environ.setdefault(WORKER_NICENESS_ENV, "0")
