"""report.html in a real headless browser (Debian's chromium and chromedriver, with
selenium): every figure of report.md is drawn, from the page alone. Skipped where no
browser is installed (.ci/run installs one)."""

import re
import shutil

import pytest

from arithlab.plots import report

webdriver = pytest.importorskip("selenium.webdriver")
BROWSER, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(not (BROWSER and DRIVER), reason="no chromium and chromedriver installed")


@pytest.fixture
def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = BROWSER
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(flag)
    driver = webdriver.Chrome(options=options, service=webdriver.ChromeService(executable_path=DRIVER))
    yield driver
    driver.quit()


def test_report_html_shows_every_figure_of_report_md_in_a_browser(trained_run, tmp_path, browser):
    run = tmp_path / "run"
    shutil.copytree(trained_run, run)
    report(run)
    # The page alone, moved away from the figures' files: it must not need them.
    page = tmp_path / "alone" / "report.html"
    page.parent.mkdir()
    shutil.copy(run / "report.html", page)
    browser.get(page.as_uri())
    figures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", (run / "report.md").read_text())
    drawn = browser.execute_script(
        "return Array.from(document.images).map(i => [i.complete, i.naturalWidth, i.naturalHeight]);"
    )
    assert len(drawn) == len(figures) >= 1
    assert all(complete and width > 100 and height > 100 for complete, width, height in drawn), drawn
    headings = browser.execute_script("return Array.from(document.querySelectorAll('h1')).map(h => h.textContent);")
    assert headings and headings[0] == (run / "report.md").read_text().splitlines()[0].lstrip("# ")
