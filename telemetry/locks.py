"""Transaction-scoped advisory locks that serialise writers touching the same keys.

Keys are hashed in Python and locked in sorted order, so two transactions that share keys
always wait for each other in the same order and cannot deadlock on them. Locks are taken in
their own statement: under READ COMMITTED the next statement then sees whatever the
transaction we waited for committed.
"""

import hashlib
from collections.abc import Iterable

from django.db import connection

RUNS = 1
ANALYTICS_DAYS = 2
ROLLUP_HOURS = 3


def _hash32(key: str) -> int:
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=4).digest(), "big", signed=True)


def lock_keys(namespace: int, keys: Iterable[object]) -> None:
    hashes = sorted({_hash32(str(key)) for key in keys})
    if not hashes:
        return
    with connection.cursor() as cur:
        cur.execute(
            "SELECT count(pg_advisory_xact_lock(%s, h)) FROM unnest(%s::int[]) AS h",
            [namespace, hashes],
        )
