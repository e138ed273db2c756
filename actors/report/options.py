"""What a report's production needs from the configuration: chunk size and the URL templates."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class ReportOptions(BaseModel):
    model_config = ConfigDict(frozen=True)

    chunk_rows: int = 50_000  # rows per render chunk (chunks also break at school groups)
    student_url_template: str = "https://{subdomain}.lxp.local/course/{course_id}"
    admin_url_template: str = "https://{subdomain}.lxp.local/admin/courses/{course_id}/edit"
