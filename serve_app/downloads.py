"""Serving report files from embedded (``file://``) storage behind signed, expiring links."""

from __future__ import annotations

import re

from fastapi.responses import FileResponse

from actors.report.formats import content_type
from actors.storage.local import LocalStorage
from serve_app.errors import ApiError

# ASCII digits, and few of them: ``str.isdigit`` also takes "²" (which ``int`` then rejects) and
# ``int`` refuses 5,000 digits; either must be a 403 like any other bad link, never a 500.
_EXPIRES = re.compile(r"[0-9]{1,12}")


def serve_file(storage: LocalStorage, key: str, expires: str | None, signature: str | None) -> FileResponse:
    if (
        not expires
        or not _EXPIRES.fullmatch(expires)
        or not signature
        or not storage.signer.valid(key, int(expires), signature)
    ):
        raise ApiError(403, "the download link is invalid or has expired")
    try:
        path = storage.path(key)
    except KeyError:
        raise ApiError(404, "no such file") from None
    if not path.is_file():
        raise ApiError(404, "no such file")
    return FileResponse(
        path, media_type=content_type(path.name), filename=path.name, headers={"Cache-Control": "private, no-store"}
    )
