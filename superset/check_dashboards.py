"""Opens tweetlake's Superset dashboards in headless Chromium, as a person would, and reports
what rendered: run by t/020_superset.pl with the venv's Python (playwright, driving Debian's
/usr/bin/chromium; it never downloads a browser).

usage: SUPERSET_ADMIN_PASSWORD=... python check_dashboards.py BASE_URL USER OUT_DIR SLUG...

Logs in through the login form, then for each dashboard waits until every chart shows a
rendered canvas, svg, table or number, or an error, saves OUT_DIR/superset-SLUG.png and prints
one JSON object per dashboard: title, png, and per chart its name, viz type, whether it
rendered, whether it said "No results", and any error text on it; and the script errors and
Content-Security-Policy violations seen on the page (the login page's count with the first).
"""
import json
import os
import shutil
import sys
import tempfile
import time

from playwright.sync_api import sync_playwright

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run"]

# Per chart: rendered content, errors, and whether it is still loading.
CHART_STATE_JS = """
() => Array.from(document.querySelectorAll('.chart-slice')).map(el => {
  const box = el.querySelector('.chart-container, .slice_container') || el;
  const errs = Array.from(el.querySelectorAll('.alert-danger, .ant-alert-error, [role=alert]'))
                    .map(e => e.innerText.trim()).filter(t => t);
  const text = el.innerText || '';
  if (/Unexpected error|An error occurred|Error:/.test(text)) errs.push(text.trim().slice(0, 300));
  const number = box.querySelector('.header-line');
  return {
    empty: /No results were returned/.test(text),
    name: el.getAttribute('data-test-chart-name'),
    viz_type: el.getAttribute('data-test-viz-type'),
    rendered: !!(box.querySelector('canvas, svg, table') || (number && number.innerText.trim())),
    loading: !!el.querySelector('.loading, [aria-label="Loading"]'),
    error: errs.length ? errs.join(' | ') : null,
  };
})
"""


def check_dashboard(page, base, slug, out_dir, timeout=90):
    page.goto(f"{base}/superset/dashboard/{slug}/", wait_until="domcontentloaded")
    page.wait_for_selector(".chart-slice", timeout=timeout * 1000)
    # Auto-refreshing dashboards reload their charts every few seconds: a chart counts as
    # rendered once it has been seen drawn, and any error seen on it is kept.
    deadline = time.time() + timeout
    seen = {}
    while time.time() < deadline:
        for c in page.evaluate(CHART_STATE_JS):
            s = seen.setdefault(c["name"], dict(c, rendered=False, empty=False, error=None))
            if c["rendered"] and not c["loading"]:
                s["rendered"] = True
            s["empty"] = s["empty"] or c["empty"]
            s["error"] = s["error"] or c["error"]
        if seen and all(s["rendered"] or s["error"] for s in seen.values()):
            break
        time.sleep(0.5)
    time.sleep(2)  # let the ECharts animations finish before the picture
    charts = [dict(s, loading=None) for s in seen.values()]
    png = os.path.join(out_dir, f"superset-{slug}.png")
    # The page down to the last chart, without the empty rest of the tall window.
    bottom = page.evaluate("""() => Math.max(...Array.from(document.querySelectorAll('.chart-slice'))
                                       .map(e => e.getBoundingClientRect().bottom + window.scrollY))""")
    page.screenshot(path=png, clip={"x": 0, "y": 0, "width": 1600, "height": min(bottom + 40, 1800)})
    title = page.title()
    return {"slug": slug, "title": title, "png": png, "charts": charts}


def main():
    base, user, out_dir, *slugs = sys.argv[1:]
    password = os.environ["SUPERSET_ADMIN_PASSWORD"]
    os.makedirs(out_dir, exist_ok=True)
    profile = tempfile.mkdtemp(prefix="chromium-profile-")
    page_errors = []
    csp_violations = []
    try:
        with sync_playwright() as p:
            # A persistent context on a fresh directory: --user-data-dir, removed afterwards.
            ctx = p.chromium.launch_persistent_context(
                profile, executable_path=CHROMIUM, headless=True, args=FLAGS,
                viewport={"width": 1600, "height": 1800})
            page = ctx.new_page()
            page.on("pageerror", lambda e: page_errors.append(str(e)[:300]))
            # what the Content-Security-Policy blocked (Chromium reports it on the console)
            page.on("console", lambda m: m.type == "error" and "Content Security Policy" in m.text
                    and csp_violations.append(m.text[:300]))
            page.goto(f"{base}/login/", wait_until="domcontentloaded")
            page.fill("#username", user)
            page.fill("#password", password)
            page.click("input[type=submit]")
            page.wait_for_load_state("domcontentloaded")
            if "/login" in page.url:
                sys.exit(f"check_dashboards.py: login as {user} failed (still at {page.url})")
            for slug in slugs:
                result = check_dashboard(page, base, slug, out_dir)
                result["page_errors"] = page_errors[:]
                result["csp_violations"] = csp_violations[:]
                page_errors.clear()
                csp_violations.clear()
                print(json.dumps(result), flush=True)
            ctx.close()
    finally:
        shutil.rmtree(profile, ignore_errors=True)


if __name__ == "__main__":
    main()
