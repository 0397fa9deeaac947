"""`dlcheck fleet --html FILE`: one self-contained page, checked as text and in a real headless
Chromium (Debian's /usr/bin/chromium, driven by Playwright; never `playwright install`).

The browser tests share one page of 1,000 generated hosts in two runs, plus hosts whose name
and check messages carry markup, as an attacker with one host's reports could write them.
Set DLCHECK_SCREENSHOT_DIR to keep the screenshots.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from dlcheck.commands.fleet import FleetOptions, build
from dlcheck.models import ExitCode
from dlcheck.render.fleet_html import render_html
from tests.fakes.cli import invoke
from tests.fakes.fleet import write_fleet

CHROMIUM = "/usr/bin/chromium"
# The flags the env docs give for this machine: without the networking ones Chromium's
# background connections are refused by the closed network, many at a time.
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                  "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync"]  # fmt: skip
OLD, NEW = "20261201T020000Z", "20261202T020000Z"
EVIL_HOST = "<script>alert('host')"  # a folder name: no "/" possible
EVIL_MESSAGE = "<img src=x onerror=alert('msg')><script>alert('check')</script>"


def _evil(root: Path) -> None:
    """A host folder named with markup, and check messages and fixes carrying more."""
    source = next(p for p in sorted(root.iterdir()) if p.name.endswith("5"))
    target = root / EVIL_HOST
    shutil.copytree(source, target)
    body = json.loads((target / "check.json").read_text())
    body["data"]["checks"][0].update(status="FAIL", message=EVIL_MESSAGE,
                                     fix="echo '</code><script>alert(1)</script>'")  # fmt: skip
    body["data"]["gpus"][0]["name"] = "A100 <b>bold</b> & \"quoted\""
    (target / "check.json").write_text(json.dumps(body))


def make_history(root: Path, hosts: int) -> Path:
    write_fleet(root / OLD, hosts, seed=1)
    shutil.copytree(root / OLD, root / NEW)

    def change(index, files):  # a framework gone on host 4; the rest as before
        if index == 4:
            files["check.json"]["frameworks"]["torch"].update(installed=False, version=None)

    shutil.rmtree(root / NEW / "gpu-0004")
    write_fleet(root / NEW / "_one", 5, seed=1, edit=change)
    (root / NEW / "_one" / "gpu-0004").rename(root / NEW / "gpu-0004")
    shutil.rmtree(root / NEW / "_one")
    _evil(root / NEW)
    _evil(root / OLD)
    return root


def test_every_report_string_is_escaped(tmp_path):
    root = make_history(tmp_path, 12)
    page = render_html(build(FleetOptions(root)))
    assert page.count("<script") == 1  # ours, and no other
    assert "onerror=alert" not in page.replace("onerror=alert(&#x27;msg&#x27;)", "")
    assert "&lt;script&gt;alert(&#x27;host&#x27;)</button>" in page
    assert "&lt;img src=x onerror=alert(&#x27;msg&#x27;)&gt;" in page
    assert "A100 &lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;" in page
    assert "http://" not in page.replace("http://www.w3.org/2000/svg", "")  # nothing to fetch
    assert "https://" not in page


def test_html_is_written_atomically_and_bad_targets_are_refused(tmp_path):
    root = make_history(tmp_path / "r", 6)
    target = tmp_path / "out" / "fleet.html"
    target.parent.mkdir()
    ran = invoke(["fleet", "--html", str(target), str(root)])
    assert ran.code == ExitCode.NOT_READY  # the fleet has not-ready hosts; the page is written
    assert target.read_text().startswith("<!doctype html>")
    assert os.listdir(target.parent) == ["fleet.html"]  # no temp file left behind
    deeper = tmp_path / "new" / "folders" / "f.html"  # made, like mkdir -p
    assert invoke(["fleet", "--html", str(deeper), str(root)]).code == ExitCode.NOT_READY
    assert deeper.read_text().endswith("</html>\n")
    for bad in (tmp_path / "out", target / "below-a-file.html"):
        refused = invoke(["fleet", "--html", str(bad), str(root)])
        assert refused.code == ExitCode.USAGE and "--html" in refused.stderr, refused.stderr


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (requirements/apt-fleet.txt)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def big_page(tmp_path_factory):
    root = make_history(tmp_path_factory.mktemp("fleet"), 1000)
    target = root / "fleet.html"
    started = time.perf_counter()
    ran = invoke(["fleet", "--json", "--html", str(target), str(root)])
    seconds = time.perf_counter() - started
    print(f"\n1001 hosts x 2 runs: dlcheck fleet --json --html in {seconds:.2f} s, "
          f"page {target.stat().st_size / 2**20:.2f} MiB")
    return target, json.loads(ran.stdout)["data"]


@pytest.fixture(scope="module")
def page(browser, big_page):
    target, data = big_page
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, offline=True)
    page = context.new_page()
    problems, requests = [], []
    page.on("console", lambda m: m.type in ("error", "warning") and problems.append(m.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("dialog", lambda dialog: (problems.append(f"dialog: {dialog.message}"),
                                      dialog.dismiss()))  # fmt: skip
    page.on("request", lambda request: requests.append(request.url))
    started = time.perf_counter()
    page.goto(target.as_uri())
    page.wait_for_function("document.getElementById('shown').textContent.length > 0")
    print(f"\npage loaded and scripted in {time.perf_counter() - started:.2f} s")
    yield page, data, problems, requests
    shots = os.environ.get("DLCHECK_SCREENSHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{shots}/fleet-end.png")
    context.close()


def visible_hosts(page) -> list[str]:
    return page.eval_on_selector_all(
        "#hosts tbody:not([hidden]) tr:first-child td:first-child button",
        "buttons => buttons.map(b => b.textContent)",
    )


def test_summary_counts_match_the_json(page):
    page, data, problems, _ = page
    summary = data["summary"]
    for key in ("hosts", "ready", "cpu_only", "not_ready", "unreachable", "failed", "no_report"):
        assert page.inner_text(f"#n-{key} b") == str(summary[key]), key
    assert page.inner_text("#n-changes b") == str(len(data["changes"]))
    assert page.inner_text("#shown") == f"{summary['hosts']} of {summary['hosts']} hosts shown"
    assert problems == []


def test_filter_by_text_state_and_changes(page):
    page, data, problems, _ = page
    page.fill("#filter", "gpu-099")
    assert visible_hosts(page) == [f"gpu-099{i}" for i in range(10)]
    page.fill("#filter", "")
    page.select_option("#state", "unreachable")
    shown = visible_hosts(page)
    assert len(shown) == data["summary"]["unreachable"] and shown
    page.select_option("#state", "")
    page.check("#changed")
    assert visible_hosts(page) == ["gpu-0004"]  # the one host that changed
    page.uncheck("#changed")
    page.click("#n-not_ready")  # a summary card filters by its state
    assert len(visible_hosts(page)) == data["summary"]["not_ready"]
    page.select_option("#state", "")
    assert problems == []


def test_sort_by_host_and_by_number(page):
    page, data, problems, _ = page
    header = page.locator("#hosts th button", has_text="host")
    header.click()
    names = visible_hosts(page)
    assert names == sorted(names, key=_natural)
    header.click()
    assert visible_hosts(page)[0] == max(names, key=_natural)
    page.locator("#hosts th button", has_text="best speedup").click()
    values = page.eval_on_selector_all(
        "#hosts tbody tr:first-child td:nth-child(5)", "cells => cells.map(c => c.dataset.v)")
    numbers = [float(v) for v in values if v]
    assert numbers == sorted(numbers) and values[-1] == ""  # N/A last
    assert page.get_attribute("#hosts th:nth-child(5)", "aria-sort") == "ascending"
    assert problems == []


def _natural(name: str):
    import re

    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def test_details_show_checks_with_fixes_gpus_changes_and_the_plot(page):
    page, data, problems, _ = page
    page.fill("#filter", "gpu-0004")
    page.click("#hosts tbody:not([hidden]) button.x")
    details = page.locator("#hosts tbody:not([hidden]) tr.more")
    assert details.is_visible()
    text = details.inner_text()
    assert "framework torch: 2.13.0 -> not installed (removed)" in text
    assert "GPUs" in text and "GPU-masked-" in text
    assert details.locator(".plot svg rect").count() == 6  # one bar per benchmark row
    page.fill("#filter", "gpu-0000")  # a not-ready host: its failing check and fix
    page.click("#hosts tbody:not([hidden]) button.x")
    failing = page.locator("#hosts tbody:not([hidden]) tr.more").inner_text()
    assert "driver_too_old_for_torch" in failing and "fix it" in failing
    page.fill("#filter", "")
    assert problems == []


def test_markup_in_reports_is_shown_as_text_and_never_runs(page):
    page, data, problems, requests = page
    page.fill("#filter", "script")
    assert visible_hosts(page) == [EVIL_HOST]
    page.click("#hosts tbody:not([hidden]) button.x")
    details = page.locator("#hosts tbody:not([hidden]) tr.more").inner_text()
    assert EVIL_MESSAGE in details and "A100 <b>bold</b>" in details
    assert page.evaluate("document.querySelectorAll('script').length") == 1
    assert page.evaluate("document.querySelectorAll('img').length") == 0
    assert [r for r in requests if not r.startswith("file://")] == []  # no network at all
    shots = os.environ.get("DLCHECK_SCREENSHOT_DIR")
    if shots:
        Path(shots).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=f"{shots}/fleet-evil-host.png", full_page=False)
    page.fill("#filter", "")
    assert problems == []  # no alert() ran, no console error


def test_screenshot_of_the_top_of_the_page(page, tmp_path):
    page, data, problems, _ = page
    page.evaluate("window.scrollTo(0, 0)")
    target = Path(os.environ.get("DLCHECK_SCREENSHOT_DIR") or tmp_path) / "fleet-top.png"
    target.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(target))
    assert target.stat().st_size > 10_000  # a real picture, not a blank page
    assert problems == []
