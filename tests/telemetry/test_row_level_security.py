"""Row-level security: the database itself keeps each organisation's rows its own, whatever
SQL the app sends. These tests run as the app's role (marker `app_role`), not as operators."""

import pytest
from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connection, transaction

from telemetry import scope
from telemetry.consistency.runner import run_checks
from telemetry.models import (
    WebhookSubscription,
    WorkflowCacheState,
    WorkflowConfig,
    WorkflowRun,
)
from telemetry.webhooks import deliver_due
from tests.conftest import full_run

pytestmark = pytest.mark.app_role

DIRECTORY = {"organization", "organization_member", "api_key", "lockstep_cutover"}
# Rows scoped through a parent row are deleted before it, or they would vanish from view.
PARENTS = ["webhook_delivery", "webhook_subscription", "workflow_trace", "user_workflow_run"]


def org_tables() -> list[str]:
    """Every telemetry table but the directory that resolves a key or login to its org."""
    return sorted(
        m._meta.db_table
        for m in apps.get_app_config("telemetry").get_models()
        if m._meta.db_table not in DIRECTORY
    )


def delete_order() -> list[str]:
    return sorted(org_tables(), key=lambda t: PARENTS.index(t) if t in PARENTS else -1)


def counts() -> dict[str, int]:
    with connection.cursor() as cur:
        out = {}
        for table in org_tables():
            cur.execute(f"SELECT count(*) FROM {table}")
            out[table] = cur.fetchone()[0]
        return out


@pytest.fixture
def two_orgs(org, other_org, ingest, api_key, other_api_key, settings):
    """Both organisations with rows in every table: runs and legacy rows, rollups, lifecycle
    events, webhook deliveries and attempts, outbox records, configs, consistency results,
    written through the API and the services as in production."""
    with scope.all_orgs():
        for o in (org, other_org):
            WebhookSubscription.objects.create(
                org=o, url="http://127.0.0.1:9/hook", event_types=["workflow_completed"]
            )
            WorkflowConfig.objects.create(org=o, workflow_id="w", config_key="model")
            WorkflowCacheState.objects.create(org=o, workflow_id="w", cache_key="k")
    mine, theirs = full_run(), full_run(user_id="someone-else")
    assert ingest(mine).status_code == 200
    assert ingest(theirs, key=other_api_key).status_code == 200
    # The asynchronous modes leave an outbox record and a dirty rollup hour behind.
    settings.LOCKSTEP_WRITE_MODE, settings.LOCKSTEP_ROLLUP_REFRESH = "async", "deferred"
    assert ingest(full_run()).status_code == 200
    assert ingest(full_run(), key=other_api_key).status_code == 200
    deliver_due(timeout_s=0.5)  # nothing listens on port 9: failed attempts are recorded
    run_checks()
    return mine["run_id"], theirs["run_id"]


def test_the_app_connects_as_a_role_that_cannot_bypass_row_level_security(db):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT current_user, rolsuper, rolbypassrls FROM pg_roles WHERE rolname = current_user"
        )
        assert cur.fetchone() == (settings.LOCKSTEP_DB_ROLE, False, False)


def test_every_table_of_organisation_data_has_a_forced_policy(db):
    with connection.cursor() as cur:
        cur.execute(
            "SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, "
            "  (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) "
            "FROM pg_class c WHERE c.relname = ANY(%s) ORDER BY 1",
            [org_tables()],
        )
        rows = {name: rest for name, *rest in cur.fetchall()}
    assert set(rows) == set(org_tables())
    for table, (enabled, forced, policies) in rows.items():
        assert enabled and forced, table
        # Check results span organisations: no policy at all, so operators only.
        assert policies == (0 if table == "consistency_check_result" else 1), table


def test_raw_sql_with_no_organisation_set_sees_nothing(two_orgs):
    with scope.all_orgs():
        everything = counts()
    assert everything["user_workflow_run"] == 4
    empty = {t for t, n in everything.items() if not n}
    assert empty == set(), empty
    assert scope.current() == (settings.LOCKSTEP_DB_ROLE, "")  # as a request starts
    assert counts() == dict.fromkeys(org_tables(), 0)


def test_one_organisation_cannot_read_change_or_delete_anothers_rows(two_orgs, org, other_org):
    mine, theirs = two_orgs
    with scope.org_scope(other_org.id):
        theirs_before = counts()
    with scope.org_scope(org.id):
        assert WorkflowRun.objects.count() == 2  # its own two, no filter needed
        assert WorkflowRun.objects.filter(run_id=mine).exists()
        with connection.cursor() as cur:
            cur.execute(
                "UPDATE user_workflow_run SET workflow_id = 'hijacked' WHERE run_id = %s",
                [theirs],
            )
            assert cur.rowcount == 0
            cur.execute("DELETE FROM user_workflow_run_step WHERE org_id = %s", [other_org.id])
            assert cur.rowcount == 0
            for table in delete_order():  # everything this organisation can see
                cur.execute(f"DELETE FROM {table}")
        assert counts() == dict.fromkeys(org_tables(), 0)
    with scope.org_scope(other_org.id):
        assert counts() == theirs_before
        assert WorkflowRun.objects.get(run_id=theirs).workflow_id == "support-triage"


def test_one_organisation_cannot_write_rows_into_another(two_orgs, org, other_org):
    with scope.org_scope(org.id), connection.cursor() as cur:
        for sql in (
            "INSERT INTO rollup_dirty_hour (org_id, hour, marked_at) VALUES (%s, now(), now())",
            "UPDATE run_lifecycle_event SET org_id = %s",  # moving its own rows over
        ):
            with pytest.raises(DatabaseError, match="row-level security"), transaction.atomic():
                cur.execute(sql, [other_org.id])


def test_a_key_or_login_of_one_organisation_never_reaches_anothers_data(
    two_orgs, get_api, client, org
):
    from django.contrib.auth import get_user_model

    from telemetry.models import Membership

    mine, theirs = two_orgs
    assert get_api(f"/api/v1/runs/{theirs}").status_code == 404
    listed = [r["run_id"] for r in get_api("/api/v1/runs").json()["results"]]
    assert mine in listed and theirs not in listed and len(listed) == 2
    user = get_user_model().objects.create_user("ana", password="pw")
    Membership.objects.create(user=user, org=org, role="admin")
    client.force_login(user)
    assert client.get(f"/runs/{theirs}/").status_code == 404
    wanted = {"range": "custom", "since": "2025-01-01T00:00", "org": "globex"}
    page = client.get("/runs/", wanted).content.decode()
    assert mine in page and theirs not in page


def test_scopes_nest_and_put_back_what_was_there(db, org, other_org):
    app = settings.LOCKSTEP_DB_ROLE
    with scope.org_scope(org.id):
        assert scope.current() == (app, str(org.id))
        with scope.all_orgs():
            assert scope.current() == (settings.LOCKSTEP_DB_OPS_ROLE, "")
            with scope.org_scope(other_org.id):
                assert scope.current() == (app, str(other_org.id))
            assert scope.current() == (settings.LOCKSTEP_DB_OPS_ROLE, "")
        assert scope.current() == (app, str(org.id))
        with pytest.raises(RuntimeError), scope.all_orgs():
            raise RuntimeError("a failure inside does not leave the operator role behind")
        assert scope.current() == (app, str(org.id))
    assert scope.current() == (app, "")


@pytest.mark.django_db(transaction=True)
def test_activate_org_needs_a_transaction(org):
    with pytest.raises(RuntimeError, match="transaction"):
        scope.activate_org(org.id)
