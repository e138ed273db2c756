"""A real local HTTP server standing in for the monolith's notification API, with faults on
demand: answer 5xx or 4xx, hang past the client's timeout, or refuse connections for a while."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class NotificationAPI:
    def __init__(self, port: int = 0):
        self.received: list[dict] = []  # every request that reached the handler
        self.delivered: list[dict] = []  # the ones answered 2xx
        self.fail_until = 0.0  # answer `fail_status` until this monotonic time
        self.fail_status = 500
        self.hang_next = 0  # hang this many requests
        self._lock = threading.Lock()
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                record = {"body": body, "headers": {k.lower(): v for k, v in self.headers.items()}}
                with api._lock:
                    api.received.append(record)
                    hang = api.hang_next > 0
                    api.hang_next -= hang
                    failing = time.monotonic() < api.fail_until
                if hang:
                    time.sleep(3)
                    return
                status = api.fail_status if failing else 202
                if status < 300:
                    with api._lock:
                        api.delivered.append(record)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args):
                pass

        self._handler = Handler
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))  # 0: any free port
            self.port = s.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/api/notifications"
        self._server = None
        self.start()

    def start(self) -> None:
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), self._handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        """Stop listening: connections are refused until :meth:`start`."""
        self._server.shutdown()
        self._server.server_close()

    def fail_for(self, seconds: float, status: int = 500) -> None:
        self.fail_status, self.fail_until = status, time.monotonic() + seconds
