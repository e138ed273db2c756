"""What ``catalog-report serve`` tells a user about the Ray dashboard: its URL and how a browser
gets past Ray's token authentication. Ray 2.60 turns that on for every Ray that ``ray.init()``
starts; the dashboard's page then loads but every API call behind it answers 401 until the
browser is given the token, and Ray itself prints only where to opt out."""

from __future__ import annotations

import getpass
import json
import os
import shlex
import sys
from pathlib import Path
from urllib.request import urlopen


def browser_url(address: str) -> str:
    """``host:port`` as Ray reports it → a URL a browser on this machine can open."""
    host, _, port = address.split("://")[-1].rpartition(":")
    if host in ("0.0.0.0", "::", "[::]"):
        host = "127.0.0.1"
    return f"http://{host}:{port}"


def authentication_mode(url: str) -> str:
    """``token``, ``disabled`` or ``unknown``, as the dashboard itself enforces it (a public route)."""
    try:
        with urlopen(f"{url}/api/authentication_mode", timeout=10) as answer:
            return json.load(answer)["authentication_mode"]
    except (OSError, ValueError, KeyError):
        return "unknown"


def token_source(env=os.environ) -> str:
    """Where Ray reads the token from, in Ray's own order of precedence."""
    if env.get("RAY_AUTH_TOKEN"):
        return "the environment variable RAY_AUTH_TOKEN"
    if env.get("RAY_AUTH_TOKEN_PATH"):
        return str(Path(env["RAY_AUTH_TOKEN_PATH"]).expanduser())
    return str(Path.home() / ".ray" / "auth_token")


def how_to_open(url: str, mode: str, started_here: bool) -> list[str]:
    """The lines printed under the dashboard's URL."""
    ray_cli = shlex.quote(str(Path(sys.executable).with_name("ray")))  # the ray of this install
    lines = [f"Ray dashboard: {url}  (Serve, Actors, Jobs, Metrics)"]
    if mode == "disabled":
        lines += [
            "  WARNING: token authentication is off (RAY_AUTH_MODE=disabled): anyone who can reach this",
            f"  Ray's ports can run code as {getpass.getuser()}. Only for a machine nobody else can reach.",
        ]
        return lines
    paste = f"paste what `{ray_cli} get-auth-token` prints (the token is in {token_source()})."
    if mode == "token":
        lines += [
            '  Token authentication is on: it asks for the token once per browser ("Authentication Token',
            f'  Required"): {paste}',
        ]
    else:  # the dashboard did not say
        lines += ['  If it asks for a token ("Authentication Token Required"):', f"  {paste}"]
    if started_here:
        lines += [
            "  Purely local use, on a machine nobody else can reach: `RAY_AUTH_MODE=disabled catalog-report serve`",
            f"  skips the token; then anyone who can reach Ray's ports can run code as {getpass.getuser()}.",
        ]
    return lines
