-- (course, school) links for the institution's live courses, schools of the same institution only.
-- Ids, not names: the names travel once per report (schools are few, links many).
SELECT cs.course_id, cs.school_id
FROM course_schools cs
JOIN courses c ON c.id = cs.course_id
JOIN schools sc ON sc.id = cs.school_id
WHERE c.institution_id = ? AND c.deleted_at IS NULL AND sc.institution_id = ? {school_filter}
