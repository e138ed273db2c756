-- (course, school name) pairs for the institution's live courses, schools of the same institution.
SELECT cs.course_id, sc.name AS school_name
FROM course_schools cs
JOIN courses c ON c.id = cs.course_id
JOIN schools sc ON sc.id = cs.school_id
WHERE c.institution_id = ? AND c.deleted_at IS NULL AND sc.institution_id = ? {school_filter}
