"""Synthetic warehouses (SPEC §4) for the benchmarks, shaped like a real course catalogue.

The report's costs depend on what the text looks like, so the data must look like production:
every title distinct and nearly all with accents (a key computed per distinct string is then
computed a million times, not a few thousand), accented school names, a few huge schools and a
long tail, a third of the courses in two schools, some in none, drafts, missing publication
dates, deleted courses.

Shape ``catalogue`` (default): institution 1 has ``courses`` live courses (the report's rows; 3%
more are deleted), ``schools`` schools and ``views`` / ``enrollments`` activity rows; ``small``
small institutions (50× smaller, then halving) have their own schools and the same activity per
course, with course ids interleaved as an auto-increment key would be. Tables are written in the
order of the sort keys a Redshift table would have: courses by (institution_id, id), activity and
links by course_id. Shape ``legacy`` is ``catalog-report demo-data`` (one institution, titles from
two short word lists), kept to compare with figures measured on it.

Built with numpy and Arrow (no Python loop over rows) and loaded into DuckDB: 1M courses with
20M views take seconds. Cached in ``bench/out/cache`` under a name that holds every parameter;
same parameters and seed → same file.

    .venv/bin/python bench/synthetic.py --courses 50000        # generate (or find) and describe
"""

from __future__ import annotations

import os
import sys
import time
from datetime import date
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
CACHE = ROOT / "bench" / "out" / "cache"

VERSION = 2  # bump when the generated data changes, so stale caches are not reused
SHAPES = ("catalogue", "legacy")

# The report period the benches ask for; activity spans 2024-01-01 .. 2026-06-30, so the period
# filter keeps about 60% of it.
PERIOD = (date(2025, 1, 1), date(2026, 12, 31))
INSTITUTION = 1
SUBDOMAIN = "rede-aprender"
STUDENT_URL = "https://{subdomain}.lxp.local/course/{course_id}"
ADMIN_URL = "https://{subdomain}.lxp.local/admin/courses/{course_id}/edit"

TITLE_HEADS = [
    "Introdução à",
    "Introdução ao Estudo de",
    "Fundamentos de",
    "Fundamentos da",
    "Gestão de",
    "Práticas Avançadas em",
    "Oficina de",
    "Trilha de Formação em",
    "Workshop de",
    "Módulo Básico de",
    "Curso Completo de",
    "Didática da",
    "Metodologias Ativas em",
    "Avaliação em",
    "Tópicos Especiais em",
    "Formação Continuada em",
    "Capacitação em",
    "Especialização em",
    "Atualização em",
    "Laboratório de",
    "Seminário de",
    "Inovação em",
    "Liderança em",
    "Planejamento em",
    "Técnicas de",
    "Noções de",
    "Aplicações de",
    "Estratégias de",
    "Ética e",
    "Certificação em",
    "Introducción a",
    "Gestión de",
    "Taller de",
    "Curso Avanzado de",
    "Didáctica de",
    "Evaluación en",
    "Capacitación en",
    "Seminario de",
    "Innovación en",
    "Planificación de",
    "Prácticas de",
    "Diplomado en",
]
TITLE_SUBJECTS = [
    "Matemática Financeira",
    "Língua Portuguesa",
    "Educação Inclusiva",
    "Ciências da Natureza",
    "Programação em Python",
    "Gestão Escolar",
    "História do Brasil",
    "Geografia Econômica",
    "Física Quântica",
    "Química Orgânica",
    "Redação Acadêmica",
    "Comunicação Não Violenta",
    "Liderança Pedagógica",
    "Segurança da Informação",
    "Análise de Dados",
    "Alfabetização Científica",
    "Educação Física",
    "Artes Visuais",
    "Música e Expressão",
    "Libras",
    "Inglês Instrumental",
    "Espanhol Básico",
    "Filosofia e Sociologia",
    "Robótica Educacional",
    "Álgebra Linear",
    "Cálculo Diferencial",
    "Estatística Aplicada",
    "Geometria Analítica",
    "Biologia Celular",
    "Genética",
    "Ecologia e Sustentabilidade",
    "Educação Ambiental",
    "Saúde Mental na Escola",
    "Primeiros Socorros",
    "Psicologia do Desenvolvimento",
    "Neurociência e Aprendizagem",
    "Avaliação Formativa",
    "Gamificação",
    "Tecnologias Digitais",
    "Ensino Híbrido",
    "Cultura Maker",
    "Pensamento Computacional",
    "Educação Financeira",
    "Empreendedorismo",
    "Direitos Humanos",
    "Cidadania Digital",
    "Literatura Brasileira",
    "Produção de Texto",
    "Leitura e Interpretação",
    "Gramática Contextualizada",
    "Mediação de Conflitos",
    "Gestão de Pessoas",
    "Orçamento Público",
    "Contabilidade Básica",
    "Logística e Distribuição",
    "Atendimento ao Cliente",
    "Marketing Digital",
    "Excel Avançado",
    "Inteligência Artificial",
    "Ciência de Dados",
    "Aprendizagem de Máquina",
    "Banco de Dados",
    "Segurança do Trabalho",
    "Nutrição Escolar",
    "Educação Especial",
    "Transtorno do Espectro Autista",
    "Educação de Jovens e Adultos",
    "Educação do Campo",
    "História da África",
    "Cultura Afro-Brasileira",
    "Educação Indígena",
    "Astronomia",
    "Geologia",
    "Física Experimental",
    "Óptica",
    "Termodinâmica",
    "Eletrônica Básica",
    "Mecânica Clássica",
    "Química Analítica",
    "Bioquímica",
    "Anatomia Humana",
    "Fisiologia do Exercício",
    "Teatro na Escola",
    "Dança e Movimento",
    "Fotografia",
    "Cinema e Educação",
    "Design Gráfico",
    "Xadrez Pedagógico",
    "Matemáticas",
    "Lengua y Literatura",
    "Ciencias Sociales",
    "Física y Química",
    "Gestión del Aula",
    "Comprensión Lectora",
    "Historia de América Latina",
    "Educación Emocional",
    "Bilingüismo",
    "Diseño Curricular",
    "Orientación Vocacional",
    "Convivencia Escolar",
    "Pedagogía Montessori",
    "Evaluación por Competencias",
    "Ciberseguridad",
]
TITLE_QUALIFIERS = [
    ": Teoria e Prática",
    ": Fundamentos e Aplicações",
    " para Educadores",
    " para Gestores",
    " no Ensino Médio",
    " no Ensino Fundamental",
    " na Educação Infantil",
    " na Educação Básica",
    " com Ênfase em Inclusão",
    " — Abordagem Prática",
    " — Nível Intermediário",
    " — Nível Avançado",
    " (Edição Revisada)",
    " & Cia",
    " <Nível 2>",
    " en la Escuela Primaria",
    ": Teoría y Práctica",
    " — Módulo I",
    " — Módulo II",
    " — Módulo III",
    " (EaD)",
    " (Semipresencial)",
    " – Parte 1",
    " – Parte 2",
]
# Rare decorations: emoji (two UTF-16 units each), Greek, ß (whose casefold is "ss").
TITLE_RARE = [
    " 🚀",
    " 📚",
    " ✨",
    " 🎓",
    " (Σ e π)",
    " (α, β, γ)",
    " — Ἠθικὰ Νικομάχεια",
    " (Deutsch: Straße)",
    " — Fußball und Gesellschaft",
]
RARE_SHARE = [0.002, 0.002, 0.001, 0.001, 0.0005, 0.0005, 0.0003, 0.0003, 0.0003]

SCHOOL_KINDS = [
    "Escola Estadual",
    "Escola Municipal",
    "Colégio",
    "Colégio Estadual",
    "Instituto Federal",
    "Centro Educacional",
    "Escola Técnica",
    "EMEF",
    "Centro de Ensino Médio",
    "Colegio",
    "Escuela",
    "Liceo",
]
SCHOOL_PATRONS = [
    "Machado de Assis",
    "Cecília Meireles",
    "Tiradentes",
    "Anísio Teixeira",
    "Paulo Freire",
    "Darcy Ribeiro",
    "Rui Barbosa",
    "Olavo Bilac",
    "Clarice Lispector",
    "Monteiro Lobato",
    "São José",
    "Santa Úrsula",
    "Nossa Senhora Aparecida",
    "Dom Pedro II",
    "Getúlio Vargas",
    "Oswaldo Cruz",
    "Castro Alves",
    "José de Alencar",
    "Érico Veríssimo",
    "Carlos Drummond",
    "Vinícius de Moraes",
    "Zilda Arns",
    "Chico Mendes",
    "Santos Dumont",
    "Álvares de Azevedo",
    "Ângelo Agostini",
    "Irmã Dulce",
    "Joaquim Nabuco",
    "Graciliano Ramos",
    "Jorge Amado",
    "Rachel de Queiroz",
    "Guimarães Rosa",
    "Cora Coralina",
    "Cândido Portinari",
    "Villa-Lobos",
    "Pixinguinha",
    "Marechal Rondon",
    "Princesa Isabel",
    "Barão de Mauá",
    "Nísia Floresta",
    "Conceição Evaristo",
    "Milton Santos",
    "Gabriela Mistral",
    "Simón Bolívar",
    "José Martí",
    "Sor Juana Inés de la Cruz",
    "Nuestra Señora de Guadalupe",
    "San Martín de Porres",
    "Rubén Darío",
    "Benito Juárez",
]

DAY_US = 86_400 * 10**6
ACTIVITY = (np.datetime64("2024-01-01", "us"), np.datetime64("2026-07-01", "us"))
PUBLISHED = (np.datetime64("2018-01-01", "us"), np.datetime64("2026-06-30", "us"))


def warehouse(
    courses: int = 1_000_000,
    views: int | None = None,
    enrollments: int | None = None,
    *,
    schools: int = 200,
    small: int = 9,
    seed: int = 42,
    shape: str = "catalogue",
    cache_dir: Path = CACHE,
) -> tuple[Path, float | None]:
    """The cached warehouse file and the seconds spent generating it (None when it was cached).
    ``views`` and ``enrollments`` default to 20 and 5 per course."""
    views = 20 * courses if views is None else views
    enrollments = 5 * courses if enrollments is None else enrollments
    if shape not in SHAPES:
        raise ValueError(f"shape must be one of {SHAPES}")
    if shape == "legacy":
        name = f"legacy_c{courses}_v{views}_e{enrollments}_s{seed}.duckdb"
    else:
        name = f"catalogue{VERSION}_c{courses}_v{views}_e{enrollments}_sc{schools}_i{small}_s{seed}.duckdb"
    path = Path(cache_dir) / name
    if path.exists():
        return path, None
    started = time.perf_counter()
    if shape == "legacy":
        from actors.warehouse.demo import generate

        generate(path, institutions=1, courses=courses, schools=300, views=views, enrollments=enrollments, seed=seed)
    else:
        write_duckdb(catalogue(courses, views, enrollments, schools=schools, small=small, seed=seed), path)
    return path, time.perf_counter() - started


def catalogue(
    courses: int, views: int, enrollments: int, *, schools: int = 200, small: int = 9, seed: int = 42
) -> dict[str, pa.Table]:
    """The five tables of SPEC §4 as Arrow, each in its sort-key order."""
    rng = np.random.default_rng(seed)
    sizes = [(INSTITUTION, courses, schools)]
    for k in range(small):
        live = max(20, courses // (50 << k))
        sizes.append((INSTITUTION + 1 + k, live, max(2, min(50, live // 500))))
    total = {inst: live + -(-live * 3 // 100) for inst, live, _ in sizes}  # + 3% deleted
    # Auto-increment ids: the institutions' courses interleaved in creation order.
    owner = rng.permutation(np.repeat([s[0] for s in sizes], [total[s[0]] for s in sizes]))
    n = len(owner)
    ids = np.arange(1001, 1001 + n, dtype=np.int64)

    school_tables, link_parts, view_counts, enrol_counts = [], [], np.zeros(n, np.int64), np.zeros(n, np.int64)
    deleted = np.zeros(n, dtype=bool)
    published = rng.random(n) < 0.8
    popularity = rng.lognormal(0.0, 1.3, n) * np.where(published, 1.0, 0.05)
    next_school = 101
    for inst, live, n_schools in sizes:
        mine = np.flatnonzero(owner == inst)
        deleted[rng.choice(mine, len(mine) - live, replace=False)] = True
        school_ids = np.arange(next_school, next_school + n_schools, dtype=np.int64)
        next_school += n_schools
        school_tables.append(
            pa.table(
                {
                    "id": school_ids,
                    "institution_id": np.full(n_schools, inst, np.int64),
                    "name": school_names(rng, n_schools),
                }
            )
        )
        link_parts.append(_links(rng, ids[mine], school_ids))
        p = popularity[mine] / popularity[mine].sum()
        view_counts[mine] = rng.multinomial(round(views * live / courses), p)
        enrol_counts[mine] = rng.multinomial(round(enrollments * live / courses), p)

    course_ids = np.concatenate([p[0] for p in link_parts])
    linked = np.concatenate([p[1] for p in link_parts])
    by_course = np.argsort(course_ids, kind="stable")
    by_owner = np.lexsort((ids, owner))
    table_courses = _courses(rng, ids, owner, published, deleted).take(by_owner)
    if pc.count_distinct(table_courses["title"]).as_py() != n:
        raise AssertionError("titles must be distinct")
    return {
        "schools": pa.concat_tables(school_tables),
        "courses": table_courses,
        "course_schools": pa.table({"course_id": course_ids[by_course], "school_id": linked[by_course]}),
        "course_views": _views(rng, ids, view_counts),
        "enrollments": _enrollments(rng, ids, enrol_counts),
    }


def titles(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` distinct titles: head + subject, then optional qualifier, class or term and rare
    decoration; drawn as a combination code, redrawing the class or term of any repeat."""
    head = rng.integers(0, len(TITLE_HEADS), n)
    subject = rng.integers(0, len(TITLE_SUBJECTS), n)
    qualifier = np.where(rng.random(n) < 0.35, len(TITLE_QUALIFIERS), rng.integers(0, len(TITLE_QUALIFIERS), n))
    rare = np.searchsorted(np.cumsum(RARE_SHARE), rng.random(n), side="right")  # len(TITLE_RARE): none
    # edition: 0 none, 1..99 "— Turma k", 100.. "(year.term)" 2019.1 … 2026.2
    edition = np.where(rng.random(n) < 0.5, 0, rng.integers(1, 116, n))
    sizes = [len(TITLE_HEADS), len(TITLE_SUBJECTS), len(TITLE_QUALIFIERS) + 1, len(TITLE_RARE) + 1]
    while True:
        code = (((head * sizes[1] + subject) * sizes[2] + qualifier) * sizes[3] + rare) * 1_000_000 + edition
        _, first = np.unique(code, return_index=True)
        repeat = np.ones(n, dtype=bool)
        repeat[first] = False
        if not repeat.any():
            break
        edition[repeat] = rng.integers(1, 1000, int(repeat.sum()))  # 116..999: classes too

    term = edition - 100
    turma = pc.binary_join_element_wise(" — Turma ", pc.cast(pa.array(edition), pa.string()), "")
    year = pc.cast(pa.array(2019 + term // 2), pa.string())
    semester = pc.cast(pa.array(1 + term % 2), pa.string())
    termo = pc.binary_join_element_wise(" (", year, ".", semester, ")", "")
    is_term = pa.array((edition >= 100) & (edition < 116))
    ed = pc.if_else(pa.array(edition == 0), "", pc.if_else(is_term, termo, turma))
    text = pc.binary_join_element_wise(
        _pick(TITLE_HEADS, head),
        " ",
        _pick(TITLE_SUBJECTS, subject),
        _pick(TITLE_QUALIFIERS + [""], qualifier),
        ed,
        _pick(TITLE_RARE + [""], rare),
        "",
    )
    case = rng.random(n)  # people type: 2% all lower case, 0.5% all upper case
    text = pc.if_else(pa.array(case < 0.02), pc.utf8_lower(text), text)
    text = pc.if_else(pa.array(case > 0.995), pc.utf8_upper(text), text)
    return text


def school_names(rng: np.random.Generator, n: int) -> pa.Array:
    """``n`` distinct "kind patron" names, a few typed in lower case."""
    combos = len(SCHOOL_KINDS) * len(SCHOOL_PATRONS)
    if n > combos:
        raise ValueError(f"at most {combos} schools per institution")
    pick = rng.choice(combos, n, replace=False)
    names = pc.binary_join_element_wise(
        _pick(SCHOOL_KINDS, pick // len(SCHOOL_PATRONS)), " ", _pick(SCHOOL_PATRONS, pick % len(SCHOOL_PATRONS)), ""
    )
    return pc.if_else(pa.array(rng.random(n) < 0.03), pc.utf8_lower(names), names)


def _pick(words: list[str], idx: np.ndarray) -> pa.Array:
    return pc.take(pa.array(words, pa.string()), pa.array(idx))


def _links(rng: np.random.Generator, course_ids: np.ndarray, school_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(course, school) pairs: 5% of courses in none, a third in two, the rest in one; school
    sizes Zipf-like (a few huge schools, a long tail), unrelated to the school ids."""
    s, n = len(school_ids), len(course_ids)
    weight = 1.0 / np.arange(1, s + 1) ** 1.1
    weight = (weight / weight.sum())[rng.permutation(s)]
    first = rng.choice(s, n, p=weight)
    second = rng.choice(s, n, p=weight)
    second = np.where(second == first, (first + 1) % s, second)
    kind = rng.random(n)
    one, two = kind >= 0.05, (kind >= 0.05) & (kind < 0.38) & (s > 1)
    return (
        np.concatenate([course_ids[one], course_ids[two]]),
        np.concatenate([school_ids[first[one]], school_ids[second[two]]]),
    )


def _courses(
    rng: np.random.Generator, ids: np.ndarray, owner: np.ndarray, published: np.ndarray, deleted: np.ndarray
) -> pa.Table:
    """Published (80%) mostly with a date (3% without); drafts mostly without (10% with one,
    published once and withdrawn)."""
    n = len(ids)
    dated = np.where(published, rng.random(n) >= 0.03, rng.random(n) < 0.1)
    return pa.table(
        {
            "id": ids,
            "institution_id": owner.astype(np.int64),
            "title": titles(rng, n),
            "status": pc.if_else(pa.array(published), "published", "draft"),
            "published_at": pa.array(_instants(rng, n, *PUBLISHED), mask=~dated),
            "deleted_at": pa.array(_instants(rng, n, np.datetime64("2023-01-01", "us"), ACTIVITY[1]), mask=~deleted),
        }
    )


def _views(rng: np.random.Generator, ids: np.ndarray, counts: np.ndarray) -> pa.Table:
    total = int(counts.sum())
    return pa.table(
        {
            "course_id": np.repeat(ids, counts),
            "user_id": rng.integers(1, 200_001, total),
            "viewed_at": pa.array(_instants(rng, total, *ACTIVITY)),
        }
    )


def _enrollments(rng: np.random.Generator, ids: np.ndarray, counts: np.ndarray) -> pa.Table:
    """45% completed, within 120 days of enrolling."""
    total = int(counts.sum())
    enrolled = _instants(rng, total, *ACTIVITY)
    completed = enrolled + rng.integers(3_600 * 10**6, 120 * DAY_US, total).astype("timedelta64[us]")
    return pa.table(
        {
            "course_id": np.repeat(ids, counts),
            "user_id": rng.integers(1, 200_001, total),
            "enrolled_at": pa.array(enrolled),
            "completed_at": pa.array(completed, mask=rng.random(total) >= 0.45),
        }
    )


def _instants(rng: np.random.Generator, n: int, lo: np.datetime64, hi: np.datetime64) -> np.ndarray:
    """Uniform instants in [lo, hi), whole seconds."""
    seconds = rng.integers(0, (hi - lo).astype(np.int64) // 10**6, n)
    return lo + (seconds * 10**6).astype("timedelta64[us]")


def write_duckdb(tables: dict[str, pa.Table], path: Path) -> Path:
    """Create the SPEC §4 tables and fill them in the given row order (atomically)."""
    import duckdb

    from actors.warehouse.demo import SCHEMA

    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    tmp.unlink(missing_ok=True)
    con = duckdb.connect(str(tmp))
    try:
        con.execute(SCHEMA)
        for name, table in tables.items():
            con.register("src", table)
            con.execute(f"INSERT INTO {name} SELECT * FROM src")
            con.unregister("src")
        con.execute("CHECKPOINT")
    finally:
        con.close()
    os.replace(tmp, path)
    return path


def report_table(path: Path) -> pa.Table:
    """Institution 1's report over ``PERIOD`` as the service computes it, every cell a value
    (``actors.report.catalog.SHEET_SCHEMA``): the render benchmark's input."""
    from actors.report.catalog import build_report
    from actors.warehouse import CatalogQuery, open_warehouse

    utc = ZoneInfo("UTC")
    wh = open_warehouse(f"duckdb://{path}")
    try:
        query = CatalogQuery.for_dates(INSTITUTION, *PERIOD, utc)
        rows, names = wh.fetch(query), wh.school_names(query)
    finally:
        wh.close()
    report = build_report(
        rows, names, subdomain=SUBDOMAIN, student_template=STUDENT_URL, admin_template=ADMIN_URL, zone=utc
    )
    return report.cells().combine_chunks()


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


def cached_report_table(
    rows: int, cache_dir: Path = CACHE, *, seed: int = 42, shape: str = "catalogue"
) -> tuple[pa.Table, Path]:
    """``report_table`` of the ``rows``-course warehouse, computed once into ``cache_dir`` as
    Arrow IPC."""
    source, _ = warehouse(rows, seed=seed, shape=shape, cache_dir=cache_dir)
    path = Path(cache_dir) / (source.stem + ".report.arrow")
    if not path.exists():
        write_ipc(report_table(source), path)
    return read_ipc(path), path


def describe(path: Path) -> str:
    """What the generated data looks like, measured from the file."""
    import duckdb

    with duckdb.connect(str(path), read_only=True) as con:

        def one(sql: str):
            return con.execute(sql).fetchone()

        counts = {
            t: one(f"SELECT count(*) FROM {t}")[0]
            for t in ("schools", "courses", "course_schools", "course_views", "enrollments")
        }
        live, distinct, ascii_, drafts, undated, deleted = one(f"""
            SELECT count(*) FILTER (deleted_at IS NULL), count(DISTINCT title),
                   count(*) FILTER (regexp_matches(title, '^[\\x00-\\x7F]*$')),
                   count(*) FILTER (status = 'draft'), count(*) FILTER (published_at IS NULL),
                   count(*) FILTER (deleted_at IS NOT NULL)
            FROM courses WHERE institution_id = {INSTITUTION}""")
        total = live + deleted
        per = con.execute(f"""
            SELECT n, count(*) FROM (
                SELECT c.id, count(cs.school_id) AS n FROM courses c
                LEFT JOIN course_schools cs ON cs.course_id = c.id
                WHERE c.institution_id = {INSTITUTION} GROUP BY c.id) GROUP BY n ORDER BY n""").fetchall()
        sizes = [
            r[0]
            for r in con.execute(f"""
            SELECT count(*) FROM course_schools cs JOIN schools s ON s.id = cs.school_id
            WHERE s.institution_id = {INSTITUTION} GROUP BY s.id ORDER BY 1 DESC""").fetchall()
        ]
        samples = [
            r[0]
            for r in con.execute(
                f"SELECT title FROM courses WHERE institution_id = {INSTITUTION} "
                "USING SAMPLE reservoir(8 ROWS) REPEATABLE (1)"
            ).fetchall()
        ]
    schools_per = ", ".join(f"{n}: {c / total:.1%}" for n, c in per)
    return "\n".join(
        [
            f"{path.name}: " + ", ".join(f"{t} {c:,}" for t, c in counts.items()),
            f"institution {INSTITUTION}: {live:,} live + {deleted:,} deleted courses; titles distinct "
            f"{distinct:,}/{total:,}, non-ASCII {1 - ascii_ / total:.1%}; drafts {drafts / total:.1%}; "
            f"no published_at {undated / total:.1%}",
            f"schools per course {schools_per}; links per school: largest {sizes[:5]}, "
            f"median {sizes[len(sizes) // 2]}, smallest {sizes[-1]} ({len(sizes)} schools)",
            "sample titles: " + " | ".join(samples),
        ]
    )


if __name__ == "__main__":
    import argparse

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--courses", type=int, default=1_000_000)
    p.add_argument("--views", type=int, default=None, help="default: 20 per course")
    p.add_argument("--enrollments", type=int, default=None, help="default: 5 per course")
    p.add_argument("--schools", type=int, default=200)
    p.add_argument("--small", type=int, default=9, help="small institutions besides the big one")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--shape", choices=SHAPES, default="catalogue")
    a = p.parse_args()
    file, seconds = warehouse(
        a.courses, a.views, a.enrollments, schools=a.schools, small=a.small, seed=a.seed, shape=a.shape
    )
    print(("cached" if seconds is None else f"generated in {seconds:.1f} s") + "\n" + describe(file))
