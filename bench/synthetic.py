"""A deterministic, realistic report table (``actors.catalog.SHEET_SCHEMA``) for benchmarks.

Built with numpy + Arrow compute, no Python loop over rows, so a million rows take a few
seconds. Same ``rows`` and ``seed`` → same table, in the order the report uses (by school,
courses without a school last, then title, then id; SPEC §5).

    from bench.synthetic import report_table, cached_report_table
    table = report_table(200_000)                    # in memory
    table = cached_report_table(1_000_000, cache_dir)  # generated once, then read from Arrow IPC
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from actors.catalog import SHEET_SCHEMA, collation_key, collation_ranks, link

VERSION = 1  # bump when the generated data changes, so stale caches are not reused

SUBDOMAIN = "rede-aprender"
STUDENT_URL = "https://{subdomain}.lxp.local/course/{course_id}"
ADMIN_URL = "https://{subdomain}.lxp.local/admin/courses/{course_id}/edit"

TITLE_HEADS = [
    "Introdução à", "Fundamentos de", "Gestão de", "Práticas Avançadas em", "Oficina de",
    "Trilha de Formação em", "Workshop Intensivo de", "Módulo Básico de", "Curso Completo de",
    "Ética e", "Didática da", "Metodologias Ativas em", "Avaliação em", "Tópicos Especiais de",
]
TITLE_SUBJECTS = [
    "Matemática Financeira", "Língua Portuguesa", "Educação Inclusiva", "Ciências da Natureza",
    "Programação em Python", "Gestão Escolar", "História do Brasil", "Geografia Econômica",
    "Física Quântica", "Química Orgânica", "Redação Acadêmica", "Comunicação Não Violenta",
    "Liderança Pedagógica", "Segurança da Informação", "Análise de Dados", "Alfabetização Científica",
    "Educação Física", "Artes Visuais", "Música e Expressão", "Libras", "Inglês Instrumental",
    "Espanhol Básico", "Filosofia e Sociologia", "Robótica Educacional",
]
TITLE_TAILS = ["", " (Edição 2025)", " para Educadores", " no Ensino Médio", " na Educação Básica",
               ": Teoria e Prática", " & Cia", " <Nível 2>"]  # two tails exercise XML escaping
NUMBERED_TAILS = [" – Turma ", " — Módulo "]

SCHOOL_KINDS = ["Escola Estadual", "Escola Municipal", "Colégio", "Instituto Federal",
                "Centro Educacional", "Escola Técnica", "Colégio Estadual", "EMEF"]
SCHOOL_NAMES = [
    "Machado de Assis", "Cecília Meireles", "Tiradentes", "Anísio Teixeira", "Paulo Freire",
    "Darcy Ribeiro", "Rui Barbosa", "Olavo Bilac", "Clarice Lispector", "Monteiro Lobato",
    "São José", "Santa Úrsula", "Nossa Senhora Aparecida", "Dom Pedro II", "Getúlio Vargas",
    "Oswaldo Cruz", "Castro Alves", "José de Alencar", "Érico Veríssimo", "Carlos Drummond",
    "Vinícius de Moraes", "Zilda Arns", "Chico Mendes", "Santos Dumont", "Álvares de Azevedo",
    "Ângelo Agostini", "Irmã Dulce", "Joaquim Nabuco", "Graciliano Ramos", "Jorge Amado",
    "Rachel de Queiroz", "Guimarães Rosa", "Cora Coralina", "Cândido Portinari", "Villa-Lobos",
    "Pixinguinha", "Ayrton Senna", "Marechal Rondon", "Princesa Isabel", "Barão de Mauá",
]

DATE_FROM = np.datetime64("2019-01-01", "D")
DATE_TO = np.datetime64("2026-06-30", "D")


def school_names(count: int = 300, seed: int = 7) -> list[str]:
    """``count`` distinct school names (at most 320), in a deterministic shuffled order."""
    names = [f"{kind} {name}" for kind in SCHOOL_KINDS for name in SCHOOL_NAMES]
    if not 1 <= count <= len(names):
        raise ValueError(f"1..{len(names)} schools")
    order = np.random.default_rng(seed).permutation(len(names))
    return [names[i] for i in order[:count]]


def _pick(words: list[str], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(words, pa.string()), pa.array(idx))


def report_table(
    rows: int,
    *,
    seed: int = 42,
    schools: int = 300,
    pair_share: float = 0.08,
    no_school_share: float = 0.03,
    published_share: float = 0.8,
) -> pa.Table:
    """``rows`` courses, sorted as the report is.

    Courses belong to one of ``schools`` schools with a skewed (Zipf-like) size distribution;
    ``pair_share`` of them to two neighbouring schools (``Escola`` = "A, B" in collation order),
    ``no_school_share`` to none (empty ``Escola``, listed last). ``published_share`` are
    published and have a publication date, the rest are drafts without one.
    """
    rng = np.random.default_rng(seed)
    n = rows

    ids = 100_000 + rng.permutation(n).astype(np.int64) * 7 + rng.integers(0, 7, n)
    ids_arr = pa.array(ids, pa.int64())

    heads = _pick(TITLE_HEADS, rng.integers(0, len(TITLE_HEADS), n))
    subjects = _pick(TITLE_SUBJECTS, rng.integers(0, len(TITLE_SUBJECTS), n))
    tails = _pick(TITLE_TAILS, rng.integers(0, len(TITLE_TAILS), n))
    numbered = rng.random(n) < 0.35
    number_text = pc.cast(pa.array(rng.integers(1, 40, n)), pa.string())
    numbered_tail = pc.binary_join_element_wise(
        _pick(NUMBERED_TAILS, rng.integers(0, len(NUMBERED_TAILS), n)), number_text, ""
    )
    tails = pc.if_else(pa.array(numbered), numbered_tail, tails)
    titles = pc.binary_join_element_wise(heads, " ", subjects, tails, "")

    published = rng.random(n) < published_share
    status = pc.if_else(pa.array(published), "Publicado", "Rascunho")
    span = int((DATE_TO - DATE_FROM).astype(np.int64))
    days = DATE_FROM + rng.integers(0, span + 1, n).astype("timedelta64[D]")
    dates = pa.array(days, pa.date32(), mask=~published)

    views = np.floor(rng.lognormal(4.0, 1.6, n)).astype(np.int64)
    views[~published] = 0
    enrollments = rng.binomial(views, 0.25)
    completions = rng.binomial(enrollments, 0.45)

    names = school_names(schools)
    weights = 1.0 / (np.arange(schools) + 8.0) ** 0.9
    first = rng.choice(schools, size=n, p=weights / weights.sum())
    kind = rng.random(n)
    keys = [collation_key(name) for name in names]
    pair_names = []
    for i in range(schools):  # "A, B" in collation order (ties by the name itself)
        j = (i + 1) % schools
        a, b = sorted([(keys[i], names[i]), (keys[j], names[j])])
        pair_names.append(f"{a[1]}, {b[1]}")
    single = pc.take(pa.array(names, pa.string()), pa.array(first))
    paired = pc.take(pa.array(pair_names, pa.string()), pa.array(first))
    school = pc.if_else(pa.array(kind < pair_share), paired, single)
    no_school = kind > 1.0 - no_school_share
    school = pc.if_else(pa.array(no_school), pa.scalar(None, pa.string()), school)

    table = pa.table(
        [
            ids_arr,
            titles,
            link(STUDENT_URL, SUBDOMAIN).values(pa.table({"id": ids_arr})),
            status,
            link(ADMIN_URL, SUBDOMAIN).values(pa.table({"id": ids_arr})),
            pa.array(views, pa.int64()),
            pa.array(enrollments.astype(np.int64), pa.int64()),
            pa.array(completions.astype(np.int64), pa.int64()),
            dates,
            school,
        ],
        schema=SHEET_SCHEMA,
    )
    order = np.lexsort((ids_arr.to_numpy(), collation_ranks(titles), collation_ranks(school), no_school))
    return table.take(order).combine_chunks()


def write_ipc(table: pa.Table, path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with pa.OSFile(str(tmp), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
        writer.write_table(table)
    os.replace(tmp, path)
    return path


def read_ipc(path: Path) -> pa.Table:
    """Read fully into process memory (not memory-mapped), as a table fetched from the
    warehouse would be."""
    with pa.OSFile(str(path), "rb") as source:
        return pa.ipc.open_file(source).read_all().combine_chunks()


def cached_report_table(rows: int, cache_dir: Path, *, seed: int = 42) -> tuple[pa.Table, Path]:
    """``report_table(rows, seed=seed)``, generated once into ``cache_dir`` as Arrow IPC."""
    path = Path(cache_dir) / f"report_v{VERSION}_{rows}_s{seed}.arrow"
    if not path.exists():
        write_ipc(report_table(rows, seed=seed), path)
    return read_ipc(path), path


if __name__ == "__main__":  # a quick look: python -m bench.synthetic 20
    import sys

    t = report_table(int(sys.argv[1]) if len(sys.argv) > 1 else 20)
    for row in t.slice(0, 20).to_pylist():
        print(row)
