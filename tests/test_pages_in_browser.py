"""The pages a person opens, loaded in a real browser (Debian's chromium via Playwright):
they render, the browser console stays clean, nothing is fetched from the internet, and a
screenshot of each is saved under var/screenshots/ for a person to look at."""

import os
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model

from telemetry.models import Membership
from telemetry.scope import all_orgs
from tests.conftest import full_run

CHROMIUM = "/usr/bin/chromium"
SCREENSHOTS = Path(settings.BASE_DIR) / "var" / "screenshots"

pytestmark = [pytest.mark.slow, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def browser_page(live_server):
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls in the test
    # are still plain synchronous calls.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1400, "height": 900})
        page.console_errors = []
        page.outside_requests = []
        page.on("console", lambda m: m.type == "error" and page.console_errors.append(m.text))
        page.on(
            "request",
            lambda r: (
                r.url.startswith(live_server.url)
                or r.url.startswith("data:")
                or page.outside_requests.append(r.url)
            ),
        )
        yield page
        browser.close()
    os.environ.pop("DJANGO_ALLOW_ASYNC_UNSAFE", None)


def visit(page, url: str, name: str) -> None:
    response = page.goto(url)
    page.wait_for_load_state("networkidle")
    assert response.status == 200, f"{url}: {response.status}"
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True)
    assert page.console_errors == [], f"{url}: {page.console_errors}"
    assert page.outside_requests == [], f"{url} fetched {page.outside_requests}"


def test_operators_read_runs_in_the_admin(browser_page, live_server, org, ingest):
    run = full_run()
    assert ingest(run).status_code == 200
    user = get_user_model().objects.create_superuser("ops", password="pw-123456")
    Membership.objects.create(user=user, org=org)
    page = browser_page
    visit(page, f"{live_server.url}/admin/login/", "admin-login")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "pw-123456")
    page.click("input[type=submit]")
    visit(page, f"{live_server.url}/admin/telemetry/workflowrun/", "admin-runs")
    assert "support-triage" in page.inner_text("#result_list")
    visit(
        page, f"{live_server.url}/admin/telemetry/workflowrun/{run['run_id']}/change/", "admin-run"
    )
    text = page.inner_text("#content")
    assert '"correlation_id": "xyz789"' in text  # context shown as readable JSON
    assert "claude-sonnet-4-5" in text and "priced from the price table" in text
    visit(page, f"{live_server.url}/admin/telemetry/llmusagelog/", "admin-usage-logs")
    assert page.locator("#result_list tbody tr").count() == 2


def test_api_docs_render_from_local_assets(browser_page, live_server, db):
    page = browser_page
    visit(page, f"{live_server.url}/api/docs/", "api-docs")
    page.wait_for_selector(".opblock")
    assert page.locator(".opblock").count() == 4  # ingest, runs, run, OTLP traces


def test_operators_read_the_consistency_page(browser_page, live_server, org, ingest):
    from django.db import connection

    from telemetry.consistency.runner import run_checks

    runs = [full_run(), full_run()]
    ingest(*runs)
    # The browser's event loop gives this test a connection of its own: read as an operator.
    with all_orgs(), connection.cursor() as cur:
        cur.execute("DELETE FROM workflow_trace_endpoint WHERE run_id = %s", [runs[0]["run_id"]])
    run_checks()
    get_user_model().objects.create_user("ops", password="pw-123456", is_staff=True)
    page = browser_page
    visit(page, f"{live_server.url}/login/", "login")
    page.fill("#id_username", "ops")
    page.fill("#id_password", "pw-123456")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    assert page.url.endswith("/consistency/")
    visit(page, f"{live_server.url}/consistency/", "consistency")
    page.wait_for_selector('[data-figure="fig-offenders"] svg.main-svg')
    assert page.locator(".badge.bad").count() == 1
    page.click("text=Repair…")
    page.wait_for_load_state("networkidle")
    page.screenshot(path=str(SCREENSHOTS / "consistency-repair.png"), full_page=True)
    page.click("button[type=submit] >> text=Repair")
    page.wait_for_load_state("networkidle")
    assert page.locator(".badge.bad").count() == 0
    page.screenshot(path=str(SCREENSHOTS / "consistency-repaired.png"), full_page=True)
    visit(page, f"{live_server.url}/cutover/", "cutover")
    assert "Who still reads the legacy tables" in page.content()


def test_every_dashboard_page_renders_its_charts(browser_page, live_server, org):
    from telemetry.demo import demo_runs
    from telemetry.ingest.writer import ingest_runs
    from telemetry.models import WorkflowRun

    ingest_runs(org, None, list(demo_runs(200, days=3)))
    user = get_user_model().objects.create_user("ana", password="pw-123456")
    Membership.objects.create(user=user, org=org, role="admin")
    page = browser_page
    page.goto(f"{live_server.url}/login/")
    page.fill("#id_username", "ana")
    page.fill("#id_password", "pw-123456")
    page.click("button[type=submit]")
    page.wait_for_load_state("networkidle")
    for name, charts in (("overview", 4), ("cost", 2), ("latency", 2)):
        visit(page, f"{live_server.url}/{name}/?range=7d", f"page-{name}")
        assert page.locator("[data-figure] svg.main-svg").count() >= charts, name
    visit(page, f"{live_server.url}/runs/?range=7d", "page-runs")
    assert page.locator("table.data tbody tr").count() == 50
    with all_orgs():  # this test's connection is the browser event loop's own
        run = WorkflowRun.objects.order_by("-started_at").first()
    visit(page, f"{live_server.url}/runs/{run.run_id}/", "page-run")
    assert page.locator("[data-figure] svg.main-svg").count() >= 1
    visit(page, f"{live_server.url}/settings/webhooks/", "page-webhooks")
    page.fill("#id_url", "https://hooks.example.com/lockstep")
    page.check("input[value=workflow_failed]")
    page.click("button[type=submit] >> text=Add webhook")
    page.wait_for_load_state("networkidle")
    assert "signing secret" in page.inner_text(".messages")
    # a click on a model's bar filters the page by that model
    visit(page, f"{live_server.url}/cost/?range=7d", "page-cost")
    box = page.locator('[data-figure="fig-by_model"] .bars path').last.bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)  # plotly picks the bar under the hover, then reports the click
    page.mouse.click(x, y)
    page.wait_for_url("**model=**", timeout=5000)
    page.wait_for_load_state("networkidle")
    chosen = page.url.split("model=")[1]
    assert f"model = {chosen}" in page.inner_text("main")
