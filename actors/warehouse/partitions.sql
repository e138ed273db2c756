-- The report's courses cut into (at most) K contiguous id ranges of nearly equal size: tile t holds
-- the rows numbered [t*n/K, (t+1)*n/K). ROW_NUMBER and COUNT over the whole set are plain SQL that
-- Redshift, PostgreSQL and DuckDB share; an index or sort key on (institution_id, id) makes the
-- ordering free. Integer division is spelled FLOOR(... * 1.0 / n) so every engine agrees.
SELECT MIN(t.id) AS first_id, MAX(t.id) AS last_id, COUNT(*) AS courses
FROM (
    SELECT c.id,
           CAST(FLOOR((ROW_NUMBER() OVER (ORDER BY c.id) - 1) * ? * 1.0 / COUNT(*) OVER ()) AS BIGINT) AS tile
    FROM courses c
    WHERE c.institution_id = ? AND c.deleted_at IS NULL {school_filter}
) t
GROUP BY t.tile
ORDER BY t.tile
