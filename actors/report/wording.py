"""The report's words in each locale SPEC §2a offers: headers, status words, sheet name, file
name prefix and how dates are shown. The row order does not depend on it."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Wording:
    headers: tuple[str, ...]  # in the sheet's column order (SPEC §5)
    published: str
    draft: str
    sheet: str
    file_prefix: str
    date_format: str  # the date cells' Excel number format; a date Excel cannot show is this text


WORDINGS = {
    "pt-BR": Wording(
        headers=(
            "ID",
            "Título",
            "URL de Visualização (Aluno)",
            "Status",
            "URL de Edição (Admin)",
            "Visualizações",
            "Matrículas",
            "Conclusões",
            "Data de Publicação",
            "Escola",
        ),
        published="Publicado",
        draft="Rascunho",
        sheet="Catálogo",
        file_prefix="catalogo",
        date_format="dd/mm/yyyy",
    ),
    "en": Wording(
        headers=(
            "ID",
            "Title",
            "Student View URL",
            "Status",
            "Admin Edit URL",
            "Views",
            "Enrollments",
            "Completions",
            "Publication Date",
            "School",
        ),
        published="Published",
        draft="Draft",
        sheet="Catalog",
        file_prefix="catalog",
        date_format="yyyy-mm-dd",
    ),
    "es": Wording(
        headers=(
            "ID",
            "Título",
            "URL de Visualización (Alumno)",
            "Estado",
            "URL de Edición (Admin)",
            "Visualizaciones",
            "Matrículas",
            "Finalizaciones",
            "Fecha de Publicación",
            "Escuela",
        ),
        published="Publicado",
        draft="Borrador",
        sheet="Catálogo",
        file_prefix="catalogo",
        date_format="dd/mm/yyyy",
    ),
}
DEFAULT_LOCALE = "pt-BR"
