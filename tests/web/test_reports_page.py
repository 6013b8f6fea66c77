"""Audit › Reports in a real browser (Debian's Chromium, driven by Playwright) against a real
server: the templates listed, access-denied generated as JSON after real denials, the HTML
report shown under the console's CSP, the CSV downloaded with its signature, and a review
acknowledged and found in the audit trail. Each test saves screenshots (conftest ``shoot``)."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import ADMIN_KEY
from tests.web.conftest import SCREENSHOTS
from tests.web.test_console import audit_events, sign_in

pytestmark = pytest.mark.timeout(180)

DENIED_USER = "report-intruder"
DENIALS = 2


@pytest.fixture(scope="module")
def denied(console_server: Any) -> Iterator[str]:
    """A user without policies whose DENIALS calls were refused (implicit deny); its name."""
    url = console_server.url
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {ADMIN_KEY}"}) as root:
        assert root.put(f"/api/v1/iam/users/{DENIED_USER}").status_code == 201
        created = root.post(f"/api/v1/iam/users/{DENIED_USER}/keys")
        assert created.status_code == 201, created.text
    with httpx.Client(
        base_url=url, headers={"Authorization": f"Bearer {created.json()['key']}"}
    ) as c:
        for _ in range(DENIALS):
            assert c.get("/api/v1/iam/users").status_code == 403
    time.sleep(1.1)  # eventTime has whole seconds: the records fall inside a range ending now
    yield DENIED_USER


def open_template(page: Any, name: str, fmt: str) -> None:
    sign_in(page)
    page.goto(f"/#/reports/{name}")
    page.wait_for_selector(f".template-item.active[data-template='{name}']")
    page.click(".report-controls [data-range='1h']")
    page.click(f".report-controls [data-format='{fmt}']")


def generate(page: Any) -> None:
    page.click("button:has-text('Generate report')")
    page.wait_for_selector(".report-output:not([hidden]) .signature .report-id td:not(:empty)")


def test_templates_are_listed_and_linked_from_the_audit_page(page: Any, shoot: Any) -> None:
    sign_in(page)
    page.goto("/#/audit")
    page.click(".page-head a:has-text('Reports')")
    page.wait_for_selector(".template-item")
    assert page.url.endswith("#/reports/top-error-principals")  # the first template is open
    names = page.eval_on_selector_all(".template-item", "li => li.map(x => x.dataset.template)")
    assert len(names) == 12 and {"access-denied", "who-deleted", "console-logins"} <= set(names)
    assert page.text_content(".nav-link[aria-current=page]") == "Reports"

    page.click(".template-item[data-template='access-key-activity']")
    assert page.url.endswith("#/reports/access-key-activity")
    assert page.text_content(".report-head h2") == "Q10 Activity of one access key"
    assert page.get_attribute("input[name=access_key]", "required") is not None
    page.click("button:has-text('Generate report')")  # the required parameter is missing
    assert "access_key" in (page.text_content(".report-controls .form-error") or "")
    shoot(page, "20-reports-templates")


def test_access_denied_as_json_counts_the_denials(page: Any, denied: str, shoot: Any) -> None:
    open_template(page, "access-denied", "json")
    generate(page)
    section = page.locator(".report-section[data-section='by-principal-and-action']")
    section.wait_for()
    rows = page.evaluate(
        """() => {
          const table = document.querySelector("[data-section='by-principal-and-action'] table");
          const heads = [...table.querySelectorAll('thead th')].map(th => th.textContent);
          return [...table.querySelectorAll('tbody tr')].map(tr =>
            Object.fromEntries([...tr.children].map((td, i) => [heads[i], td.textContent])));
        }"""
    )
    mine = [r for r in rows if r["actor"] == denied]
    assert mine and mine[0]["action"] == "iam:ListUsers" and mine[0]["denials"] == str(DENIALS)
    assert mine[0]["decision"] == "ImplicitDeny"
    every = page.locator(".report-section[data-section='denials']")
    assert every.locator("tbody tr", has_text=denied).count() == DENIALS
    assert page.locator(".report-glance .badge").text_content() == "valid"
    assert len(page.text_content(".signature .sha256 td") or "") >= 64
    assert page.locator(".sha-check").text_content() == "matches the bytes received"
    assert len(page.text_content(".signature .fingerprint td") or "") == 64
    shoot(page, "21-reports-json", full_page=True)


def test_html_report_renders_in_a_sandboxed_frame_and_a_new_tab(
    page: Any, denied: str, shoot: Any
) -> None:
    open_template(page, "access-denied", "html")
    generate(page)
    frame = page.frame_locator("iframe.report-frame")
    assert frame.locator("h1").text_content() == "Q5 Access denied"
    assert frame.locator("#section-denials tbody tr", has_text=denied).count() == DENIALS
    # The report's own CSS applies (max-width 1180px on its body), though the console's CSP
    # refuses inline styles; and nothing in the frame may run.
    assert frame.locator("body").evaluate("b => getComputedStyle(b).maxWidth") == "1180px"
    assert frame.locator("header .badge").evaluate("b => getComputedStyle(b).color") == (
        "rgb(255, 255, 255)"
    )
    assert page.get_attribute("iframe.report-frame", "sandbox") == "allow-same-origin"
    assert frame.locator("script").count() == 0
    shoot(page, "22-reports-html", full_page=True)

    with page.context.expect_page() as opened:
        page.click("button.open-report")
    tab = opened.value
    tab.wait_for_selector("h1")
    assert tab.text_content("h1") == "Q5 Access denied"
    assert tab.evaluate("getComputedStyle(document.body).maxWidth") == "1180px"
    assert tab.title().startswith("Q5 Access denied")
    shoot(tab, "23-reports-html-tab")
    tab.close()


def test_csv_downloads_with_its_signature(page: Any, denied: str, shoot: Any) -> None:
    open_template(page, "access-denied", "csv")
    generate(page)
    page.wait_for_selector("pre.csv-preview")
    with page.expect_download() as report_download:
        page.click("button.download-report")
    report = report_download.value
    assert report.suggested_filename.startswith("watchkeep-report-access-denied-")
    assert report.suggested_filename.endswith(".csv")
    data = Path(report.path()).read_bytes()
    first = next(csv.reader(io.StringIO(data.decode())))
    assert first == ["section", "report", "Q5 Access denied"]
    assert "field,value" in data.decode().splitlines()[1]
    digest = hashlib.sha256(data).hexdigest()
    assert page.text_content(".signature .sha256 td").startswith(digest)  # type: ignore[union-attr]

    with page.expect_download() as sig_download:
        page.click("button.download-signature")
    signature = sig_download.value
    assert signature.suggested_filename == report.suggested_filename + ".sig.json"
    sidecar = json.loads(Path(signature.path()).read_text())
    assert sidecar["sha256"] == digest and sidecar["reportFormat"] == "csv"
    assert sidecar["reportId"] == page.text_content(".signature .report-id td")
    assert sidecar["signature"] and sidecar["algorithm"] == "Ed25519"
    shoot(page, "24-reports-csv")


def test_acknowledging_a_review_is_recorded(
    page: Any, api: httpx.Client, denied: str, shoot: Any
) -> None:
    open_template(page, "access-denied", "json")
    generate(page)
    report_id = page.text_content(".signature .report-id td")
    sha = (page.text_content(".signature .sha256 td") or "")[:64]
    page.fill("textarea.ack-notes", "Checked the denials of report-intruder: expected.")
    page.click("button:has-text('Acknowledge review')")
    page.wait_for_selector(".ack-recorded")
    assert "reviewed" in (page.text_content(".ack-recorded .badge") or "")
    assert "root" in (page.text_content(".ack-recorded") or "")
    records = audit_events(api, lookup_key="EventName", lookup_value="AcknowledgeAuditReport")
    mine = [r for r in records if (r.get("requestParameters") or {}).get("report_id") == report_id]
    assert mine, records[:1]
    params = mine[0]["requestParameters"]
    assert params["report_sha256"] == sha and params["template"] == "access-denied"
    assert mine[0]["eventSource"] == "cloudtrail.watchkeep" and "errorCode" not in mine[0]
    shoot(page, "25-reports-acknowledged", full_page=True)
    assert (SCREENSHOTS / "25-reports-acknowledged.png").exists()


def test_narrow_screen(page: Any, shoot: Any) -> None:
    page.set_viewport_size({"width": 420, "height": 900})
    sign_in(page)
    page.goto("/#/reports/who-deleted")
    page.wait_for_selector(".template-item.active")
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 420, f"the page scrolls sideways ({width}px)"
    shoot(page, "26-reports-narrow", full_page=True)
