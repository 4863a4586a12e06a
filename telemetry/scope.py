"""Which organisation's rows the database lets this code see: row-level security.

Every table holding an organisation's data has a policy that shows a transaction only the rows
of the organisation in `lockstep.org_id` (migration 0002), and the app connects as a role that
cannot bypass it. So:

- a request runs in one transaction that starts seeing nothing (`RequestScopeMiddleware`);
  the API key or the login then picks its organisation (`activate_org`);
- code that writes one organisation's rows opens `org_scope(org_id)` itself;
- work that spans organisations (the drain, rollup refresh, webhook delivery, consistency
  checks and repair, backfill, cutover, operator pages and the admin) enters `all_orgs()`,
  which assumes the operator role (BYPASSRLS) for the transaction, or for the block when it
  runs outside one and manages its own transactions. Grep for it to audit every such path.

Scopes nest: leaving one restores what the enclosing code had.
"""

from collections.abc import Iterator
from contextlib import contextmanager
from uuid import UUID

from django.conf import settings
from django.db import connection, transaction
from psycopg.pq import TransactionStatus

ORG_SETTING = "lockstep.org_id"
APP_ROLE = "none"  # SET ROLE NONE: back to the role the app logged in as


def activate_org(org_id: UUID) -> None:
    """Let the current transaction see `org_id`'s rows, and no other organisation's."""
    if not connection.in_atomic_block:
        raise RuntimeError("activate_org() needs a transaction; use org_scope() instead")
    _set(APP_ROLE, str(org_id))


@contextmanager
def org_scope(org_id: UUID) -> Iterator[None]:
    """A transaction (a savepoint when nested) that sees `org_id`'s rows as the app's role."""
    with transaction.atomic(), _restoring():
        _set(APP_ROLE, str(org_id))
        yield


@contextmanager
def no_org() -> Iterator[None]:
    """A transaction that sees no organisation's rows until `activate_org` picks one."""
    with transaction.atomic(), _restoring():
        _set(APP_ROLE, "")
        yield


@contextmanager
def all_orgs() -> Iterator[None]:
    """The deliberate path for work across organisations: the operator role, which bypasses
    row-level security. Inside a transaction it lasts until the block ends; outside one it
    holds for the block's own transactions and is reset when the block ends."""
    if connection.in_atomic_block:
        # No savepoint of its own: the block's inner transactions behave as they would
        # without it (a failure in one rolls back that one only).
        with _restoring(always=True):
            _set(settings.LOCKSTEP_DB_OPS_ROLE, "")
            yield
        return
    with connection.cursor() as cur:
        cur.execute("SELECT current_setting('role')")
        (before,) = cur.fetchone()
        cur.execute("SELECT set_config('role', %s, false)", [settings.LOCKSTEP_DB_OPS_ROLE])
    try:
        yield
    finally:
        if connection.is_usable():
            with connection.cursor() as cur:
                cur.execute("SELECT set_config('role', %s, false)", [before])


def current() -> tuple[str, str]:
    """(current database user, organisation set for this transaction or '')."""
    with connection.cursor() as cur:
        cur.execute(
            "SELECT current_user::text, coalesce(current_setting(%s, true), '')", [ORG_SETTING]
        )
        return cur.fetchone()


def _set(role: str, org: str) -> None:
    with connection.cursor() as cur:
        cur.execute(
            "SELECT set_config('role', %s, true), set_config(%s, %s, true)",
            [role, ORG_SETTING, org],
        )


@contextmanager
def _restoring(always: bool = False) -> Iterator[None]:
    """Put back the role and organisation of the enclosing transaction when a scope ends.

    A scope with its own atomic block restores only when nested (an outermost block's
    settings end with its transaction, and a failed block's savepoint rollback undoes them).
    `always`: for a scope without its own block, also on failure, unless the transaction has
    failed: then the rollback to a savepoint made before the scope began undoes them.
    """
    if not (always or connection.savepoint_ids):
        yield
        return
    with connection.cursor() as cur:
        cur.execute(
            "SELECT current_setting('role'), coalesce(current_setting(%s, true), '')",
            [ORG_SETTING],
        )
        role, org = cur.fetchone()
    try:
        yield
    finally:
        failed = connection.needs_rollback or (
            connection.connection.info.transaction_status == TransactionStatus.INERROR
        )
        if not failed:
            _set(role, org)


def render_now(response):
    """Render a lazy (template) response while the scope that read its rows still holds."""
    if callable(getattr(response, "render", None)) and not response.is_rendered:
        response.render()
    return response


class RequestScopeMiddleware:
    """Each request is one transaction that sees no organisation's rows until its API key or
    login picks one; lazy responses render inside it. A server error rolls it back."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        with no_org():
            response = render_now(self.get_response(request))
            if response.status_code >= 500:
                transaction.set_rollback(True)
        return response
