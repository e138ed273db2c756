"""What a report's production needs from the configuration: chunk size and the URL templates.
No defaults here: :class:`~actors.config.settings.Settings` has them, and builds this."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ReportOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk_rows: int  # rows per render chunk (chunks also break at school groups)
    student_url_template: str
    admin_url_template: str
