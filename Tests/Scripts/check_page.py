#!/usr/bin/env python3
"""Drives a running Sluice program's Streaming page in headless Chromium (Selenium, chromedriver).

usage: check_page.py BASE_URL SCREENSHOT_DIR OUTPUT_JSON

Opens /streaming/, waits for the timelines to show completed batches, checks that the page updates while the
job runs, reads the header's app name as text, opens the first completed batch from the table, and saves a
screenshot of each page. Writes what it saw, and every console message, as JSON; the test decides.
"""
import json
import os
import sys
import time

from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.support.ui import WebDriverWait

base, screenshots, output_path = sys.argv[1], sys.argv[2], sys.argv[3]
os.makedirs(screenshots, exist_ok=True)
options = Options()
options.binary_location = "/usr/bin/chromium"
for argument in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1300,1800"]:
    options.add_argument(argument)
options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
seen = {"console": []}

# The pages redraw every second, so element references go stale: every read is one script, one snapshot.
STREAMING = """
const rows = [...document.querySelectorAll('#completed-batches tbody tr')].map((r) => r.innerText);
const charts = {};
for (const c of document.querySelectorAll('svg.timeline')) {
  charts[c.id] = {points: Number(c.getAttribute('data-points')), circles: c.querySelectorAll('circle').length};
}
const name = document.getElementById('app-name');
const engine = document.getElementById('engine');
return {
  charts: charts, rows: rows.length, failedRows: rows.filter((t) => t.includes('failed')),
  histogramBars: document.querySelectorAll('#histogram-processing-time rect').length,
  receivers: [...document.querySelectorAll('#receivers tbody tr')].map((r) => r.innerText),
  engine: engine ? engine.innerText : null, appName: name ? name.textContent : null,
  scripts: document.querySelectorAll('script').length,
  injected: window.__pwned === undefined ? null : String(window.__pwned),
};
"""
BATCH = """
const title = document.getElementById('batch-title');
const facts = document.getElementById('batch-facts');
return {
  title: title ? title.innerText : null, facts: facts ? facts.innerText : null,
  operations: [...document.querySelectorAll('#operations tbody tr')].map((r) => r.innerText),
  inputs: [...document.querySelectorAll('#inputs tbody tr')].map((r) => r.innerText),
};
"""
try:
    wait = WebDriverWait(driver, 30)

    def streaming():
        return driver.execute_script(STREAMING)

    def points():
        return streaming()["charts"].get("timeline-processing-time", {}).get("points", 0)

    driver.get(base + "/streaming/")
    wait.until(lambda d: points() >= 2)
    first = streaming()
    seen["title"] = driver.title
    for key in ["appName", "scripts", "injected", "charts", "histogramBars"]:
        seen[key] = first[key]
    seen["firstPoints"], seen["firstRows"] = first["charts"]["timeline-processing-time"]["points"], first["rows"]
    driver.save_screenshot(os.path.join(screenshots, "streaming-page.png"))
    started = time.time()
    while time.time() - started < 15 and points() <= seen["firstPoints"]:
        time.sleep(0.2)
    later = streaming()
    seen["laterPoints"], seen["laterRows"] = later["charts"]["timeline-processing-time"]["points"], later["rows"]
    for key in ["receivers", "engine", "failedRows"]:
        seen[key] = later[key]
    # A click on the first completed batch's time, as a user would.
    seen["batchHref"] = driver.execute_script("""
        const link = document.querySelector('#completed-batches a.batch-link');
        link.click();
        return link.getAttribute('href');""")
    wait.until(lambda d: "/streaming/batch/" in d.current_url and d.execute_script(BATCH)["operations"])
    seen["batchUrl"] = driver.current_url
    batch = driver.execute_script(BATCH)
    seen["batchTitle"], seen["batchFacts"] = batch["title"], batch["facts"]
    seen["operations"], seen["inputs"] = batch["operations"], batch["inputs"]
    driver.save_screenshot(os.path.join(screenshots, "batch-page.png"))
    seen["console"] = driver.get_log("browser")
finally:
    driver.quit()
json.dump(seen, open(output_path, "w"), indent=1)
