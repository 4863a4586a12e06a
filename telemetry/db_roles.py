"""The database roles Lockstep runs as, and their privileges; brought up to date by the schema
owner after every `migrate`.

- LOCKSTEP_DB_ROLE (`lockstep_app`): the role the app logs in as. Not a superuser, no
  BYPASSRLS, owns nothing: row-level security applies to everything it reads and writes.
- LOCKSTEP_DB_OPS_ROLE (`lockstep_app_ops`): no login, BYPASSRLS; the app's role may assume it
  for work across organisations (`telemetry.scope.all_orgs`).

Creating a BYPASSRLS role takes a superuser once; without one, the error gives the SQL for a
database administrator to run.
"""

from django.conf import settings
from psycopg import sql

OWNER_DB = "owner"  # the database alias that connects as the schema owner
PRIVILEGES = [
    "GRANT USAGE ON SCHEMA {schema} TO {app}, {ops}",
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA {schema} TO {app}, {ops}",
    "GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA {schema} TO {app}, {ops}",
    # Tables and views the owner creates later (migrations, the cutover's views) too.
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
    "GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO {app}, {ops}",
    "ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} "
    "GRANT USAGE, SELECT, UPDATE ON SEQUENCES TO {app}, {ops}",
    "GRANT CONNECT, TEMPORARY ON DATABASE {database} TO {app}",
]
ROLES = {
    "app": "LOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
    "ops": "NOLOGIN NOSUPERUSER BYPASSRLS",
}


def role_statements(connection) -> list[str]:
    """The SQL that creates or corrects the two roles, for roles that need it."""
    names = {"app": settings.LOCKSTEP_DB_ROLE, "ops": settings.LOCKSTEP_DB_OPS_ROLE}
    wanted = {"app": (True, False, False), "ops": (False, False, True)}
    with connection.cursor() as cur:
        cur.execute(
            "SELECT rolname, rolcanlogin, rolsuper, rolbypassrls FROM pg_roles "
            "WHERE rolname = ANY(%s)",
            [list(names.values())],
        )
        found = {name: tuple(attrs) for name, *attrs in cur.fetchall()}
    statements = []
    for kind, name in names.items():
        if found.get(name) == wanted[kind]:
            continue
        verb = "ALTER" if name in found else "CREATE"
        statements.append(sql.SQL(f"{verb} ROLE {{}} {ROLES[kind]}").format(sql.Identifier(name)))
    return [_render(connection, s) for s in statements]


def ensure(connection) -> None:
    """Create or correct the roles, set the app role's password if one is configured, and grant
    both roles what they need on every table. Idempotent; run as the schema owner."""
    app = sql.Identifier(settings.LOCKSTEP_DB_ROLE)
    ops = sql.Identifier(settings.LOCKSTEP_DB_OPS_ROLE)
    statements = role_statements(connection)
    with connection.cursor() as cur:
        cur.execute("SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user")
        owner, superuser = cur.fetchone()
        if owner in (settings.LOCKSTEP_DB_ROLE, settings.LOCKSTEP_DB_OPS_ROLE):
            raise RuntimeError(
                f"LOCKSTEP_DB_ROLE={settings.LOCKSTEP_DB_ROLE!r} is the schema owner of "
                "DATABASE_URL; the app needs a role of its own: pick another name."
            )
        if statements and not superuser:
            raise RuntimeError(
                "The app's database roles need a superuser to create once. Ask your database "
                "administrator to run:\n  " + ";\n  ".join(statements) + ";\nthen migrate again."
            )
        for statement in statements:
            cur.execute(statement)
        if settings.LOCKSTEP_DB_PASSWORD:
            cur.execute(
                _render(
                    connection,
                    sql.SQL("ALTER ROLE {} PASSWORD {}").format(
                        app, sql.Literal(settings.LOCKSTEP_DB_PASSWORD)
                    ),
                )
            )
        cur.execute(_render(connection, sql.SQL("GRANT {} TO {}").format(ops, app)))
        names = {
            "app": app,
            "ops": ops,
            "schema": sql.Identifier(_current(cur, "current_schema()")),
            "database": sql.Identifier(_current(cur, "current_database()")),
        }
        for template in PRIVILEGES:
            cur.execute(_render(connection, sql.SQL(template).format(**names)))


def _current(cur, expression: str) -> str:
    cur.execute(f"SELECT {expression}")
    return cur.fetchone()[0]


def _render(connection, statement: sql.Composable) -> str:
    connection.ensure_connection()
    return statement.as_string(connection.connection)
