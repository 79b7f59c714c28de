# R06 destructive statements in database migrations.
package tollgate.rules.migrations

import data.tollgate.lib

migration_marks := lib.marks({"/migrations/", "/migration/", "/migrate/", "/alembic/versions/", "/db/changelog/"})

is_migration(path) if lib.contains_any(lib.slashed(path), migration_marks)

# Flyway: V1__create_users.sql, V2_1__add_index.sql.
is_migration(path) if {
	name := lib.basename(path)
	startswith(name, "V")
	endswith(name, ".sql")
	regex.match(`^V[0-9]+([._][0-9]+)*__.+\.sql$`, name)
}

# Rollback scripts undo a migration on purpose: `0002_users.down.sql`, `down.sql`,
# Flyway undo files `U2__x.sql`.
is_rollback(path) if regex.match(`(?i)(^|[._/-])(down|rollback|revert|undo)([._-]|$)`, lib.basename(path))

is_rollback(path) if regex.match(`^U[0-9]+([._][0-9]+)*__.+\.sql$`, lib.basename(path))

destructive := concat("|", [
	`(?i)\bdrop[ \t]+(table|database|schema)\b`,
	`(?i)\bdrop[ \t]+column\b`,
	`(?i)\btruncate[ \t]+(table[ \t]+)?[A-Za-z0-9_."\[\]]+`,
	# Rails, Alembic, Knex, Laravel, TypeORM, Sequelize, EF Core, Liquibase.
	`(?i)\b(drop_?table|drop_?column|drop_?join_?table|remove_?columns?|drop_?table_?if_?exists|dropIfExists)\b`,
	`(?i)\bSchema::drop\(`,
	`<dropTable\b|<dropColumn\b`,
	# Django.
	`\bmigrations\.(DeleteModel|RemoveField)\(`,
])

delete_all := concat("", [`(?i)\bdelete[ \t]+from[ \t]+[A-Za-z0-9_."\[\]`, "`", `]+`])

# The section headers of migration frameworks that put both directions in one file.
section_header := concat("|", [
	`^[ \t]*(async[ \t]+)?def[ \t]+(upgrade|downgrade|up|down|change|forwards|backwards|self\.up|self\.down)\b`,
	`^[ \t]*(public[ \t]+)?(async[ \t]+)?function[ \t]+(up|down)\b`,
	`^[ \t]*(exports\.|module\.exports\.)?(up|down)[ \t]*[:=]`,
	# ES modules and TypeScript (Knex, Kysely): `export async function down(`,
	# `export const down = async (knex) =>`
	`^[ \t]*export[ \t]+((async[ \t]+)?function[ \t]*\*?[ \t]*|(const|let|var)[ \t]+)(up|down)\b`,
	`^[ \t]*(public[ \t]+)?(async[ \t]+)?(up|down)[ \t]*\(`,
	`^[ \t]*(public|protected)[ \t]+override[ \t]+void[ \t]+(Up|Down)[ \t]*\(`,
	`^[ \t]*--[ \t]*(\+migrate|\+goose|migrate:)[ \t]*(up|down|Up|Down)\b`,
])

down_header(text) if regex.match(`(?i)(downgrade|\bdown\b|backwards|\bDown\b)`, text)

migration_paths contains c.path if {
	some c in input.candidates.R06
	is_migration(c.path)
}

# The section headers among the added lines of each migration file, computed once per file.
# A cheap substring test keeps the regex off most lines.
headers_of[path] := headers if {
	some path in migration_paths
	f := lib.file(path)
	headers := [l |
		some l in f.added
		maybe_header(lower(l.text))
		regex.match(section_header, l.text)
	]
}

maybe_header(t) if contains(t, "up")

maybe_header(t) if contains(t, "down")

maybe_header(t) if contains(t, "change")

maybe_header(t) if contains(t, "wards")

# True when added line `n` of `path` sits in a down (rollback) section: the nearest section
# header above it among the added lines is a `down` one.
in_down_section(path, n) if {
	above := [h | some h in headers_of[path]; h.number < n]
	count(above) > 0
	last := max([h.number | some h in above])
	some h in above
	h.number == last
	down_header(h.text)
}

delete_without_where(c) if {
	regex.match(delete_all, c.text)
	not regex.match(`(?i)\bwhere\b`, c.text)
	not where_on_next_line(c)
}

# `DELETE FROM t` continued by `WHERE …` on the next line.
where_on_next_line(c) if {
	regex.match(concat("", [delete_all, `[ \t]*$`]), c.text)
	next := lib.added_text(c.path, c.line + 1)
	regex.match(`(?i)^[ \t]*where\b`, next)
}

finding(c) := m if {
	some m in regex.find_n(destructive, c.text, 1)
} else := "DELETE without WHERE" if delete_without_where(c)

violation contains {"rule": "R06", "path": c.path, "line": c.line, "message": msg} if {
	some c in input.candidates.R06
	is_migration(c.path)
	not is_rollback(c.path)
	not lib.is_test(c.path)
	not lib.is_prose(c)
	m := finding(c)
	not in_down_section(c.path, c.line)
	msg := sprintf("Destructive migration statement `%s`: it deletes data that cannot be restored by rolling back.", [lib.snippet(m)])
}
