-- One row per live course of the institution with its activity counts in [period_start, period_end).
-- Portable across DuckDB, Redshift and PostgreSQL: qmark parameters only, no array parameters,
-- no LISTAGG/STRING_AGG (school names are aggregated in Arrow; the Redshift backend wraps this
-- query in its packing, actors/warehouse/packed.py). {school_filter} is either empty or
-- "AND c.id IN (SELECT ... IN (?, ?, ...))" with one placeholder per requested school id; in a
-- partition it also holds "AND c.id BETWEEN ? AND ?", and {views_range} / {enrolled_range} repeat
-- that range on the activity tables, so an engine reads only the partition's slice of them (an
-- index or sort key on course_id; the join alone does not narrow the scan).
WITH selected AS (
    SELECT c.id, c.title, c.status, c.published_at
    FROM courses c
    WHERE c.institution_id = ? AND c.deleted_at IS NULL {school_filter}
),
views AS (
    SELECT v.course_id, COUNT(*) AS n
    FROM course_views v JOIN selected s ON s.id = v.course_id
    WHERE v.viewed_at >= ? AND v.viewed_at < ? {views_range}
    GROUP BY v.course_id
),
enrolled AS (
    -- one pass over enrollments for both counts (measured: 10% of the query in DuckDB)
    SELECT e.course_id,
           SUM(CASE WHEN e.enrolled_at >= ? AND e.enrolled_at < ? THEN 1 ELSE 0 END) AS n,
           SUM(CASE WHEN e.completed_at >= ? AND e.completed_at < ? THEN 1 ELSE 0 END) AS completed
    FROM enrollments e JOIN selected s ON s.id = e.course_id
    WHERE TRUE {enrolled_range}
    GROUP BY e.course_id
)
SELECT s.id,
       s.title,
       s.status,
       s.published_at,
       COALESCE(v.n, 0) AS views,
       COALESCE(en.n, 0) AS enrollments,
       COALESCE(en.completed, 0) AS completions
FROM selected s
LEFT JOIN views v ON v.course_id = s.id
LEFT JOIN enrolled en ON en.course_id = s.id
