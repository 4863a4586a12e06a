"""The embedded PostgreSQL used when DATABASE_URL is unset, so `make run` needs no server.

pgserver ships PostgreSQL binaries in its wheel and starts a private server under
`var/pgdata` on a Unix socket. The server stops when the last process using it exits.
"""

import warnings
from pathlib import Path

DATABASE_NAME = "lockstep"
_server = None  # the handle keeps the server running for the life of the process


def embedded_database(pgdata: Path) -> dict:
    global _server
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():  # platformdirs complains when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver

        server = _server = pgserver.get_server(pgdata)
    exists = server.psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}';")
    if "(1 row)" not in exists:
        server.psql(f"CREATE DATABASE {DATABASE_NAME};")
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": DATABASE_NAME,
        "USER": "postgres",
        "HOST": str(pgdata),
    }
