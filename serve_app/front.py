"""What runs inside Ray Serve's HTTP proxy: JSON for every answer it gives by itself
(:mod:`serve_app.wire_errors`) and a fair share of it per client (:mod:`serve_app.fair_share`).

Ray 2.60 removed ``http_options.middlewares``; the hook left for code in the proxy is the
environment variable :data:`PROXY_CALLBACK_ENV`, naming a function the proxy calls in its own
process when it starts, before its HTTP server, and whose Starlette middlewares it wraps around
itself. The proxy is a Ray worker started by Serve's controller, so the variable has to be in the
environment Ray's nodes were started with: :func:`use_in_proxy` sets it for a Ray this process
starts (``catalog-report serve``, the tests, the benches); ``ray start`` on a cluster needs it
exported (the ``Dockerfile`` does).
"""

from __future__ import annotations

import os

from starlette.middleware import Middleware

from serve_app import wire_errors
from serve_app.fair_share import FairShare

PROXY_CALLBACK_ENV = "RAY_SERVE_HTTP_PROXY_CALLBACK_IMPORT_PATH"
PROXY_CALLBACK = f"{__name__}.proxy_middlewares"


def proxy_middlewares() -> list[Middleware]:
    """Called by the proxy (see the module docstring); the last middleware is the outermost."""
    wire_errors.install()
    return [Middleware(FairShare), Middleware(wire_errors.JsonErrorAnswers)]


def use_in_proxy() -> None:
    """For a Ray started by this process: its proxies run :func:`proxy_middlewares`, unless the
    operator named another callback."""
    os.environ.setdefault(PROXY_CALLBACK_ENV, PROXY_CALLBACK)
