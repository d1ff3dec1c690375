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
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
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
try:
    wait = WebDriverWait(driver, 30)

    def points():
        return int(driver.find_element(By.ID, "timeline-processing-time").get_attribute("data-points"))

    def completed_rows():
        return len(driver.find_elements(By.CSS_SELECTOR, "#completed-batches tbody tr"))

    driver.get(base + "/streaming/")
    wait.until(lambda d: d.find_elements(By.ID, "timeline-processing-time") and points() >= 2)
    seen["title"] = driver.title
    seen["appName"] = driver.find_element(By.ID, "app-name").text
    seen["scripts"] = len(driver.find_elements(By.TAG_NAME, "script"))
    seen["injected"] = driver.execute_script("return window.__pwned === undefined ? null : String(window.__pwned)")
    seen["charts"] = {
        chart.get_attribute("id"): {
            "points": int(chart.get_attribute("data-points")),
            "circles": len(chart.find_elements(By.TAG_NAME, "circle")),
        }
        for chart in driver.find_elements(By.CSS_SELECTOR, "svg.timeline")
    }
    seen["histogramBars"] = len(driver.find_elements(By.CSS_SELECTOR, "#histogram-processing-time rect"))
    seen["firstPoints"], seen["firstRows"] = points(), completed_rows()
    driver.save_screenshot(os.path.join(screenshots, "streaming-page.png"))
    started = time.time()
    while time.time() - started < 15 and points() <= seen["firstPoints"]:
        time.sleep(0.2)
    seen["laterPoints"], seen["laterRows"] = points(), completed_rows()
    seen["receivers"] = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#receivers tbody tr")]
    seen["engine"] = driver.find_element(By.ID, "engine").text if driver.find_elements(By.ID, "engine") else None
    seen["failedRows"] = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#completed-batches tbody tr")
                          if "failed" in row.text]
    link = driver.find_element(By.CSS_SELECTOR, "#completed-batches a.batch-link")
    seen["batchHref"] = link.get_attribute("href")
    link.click()
    wait.until(expected_conditions.presence_of_element_located((By.ID, "operations")))
    seen["batchUrl"] = driver.current_url
    seen["batchTitle"] = driver.find_element(By.ID, "batch-title").text
    seen["batchFacts"] = driver.find_element(By.ID, "batch-facts").text
    seen["operations"] = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#operations tbody tr")]
    seen["inputs"] = [row.text for row in driver.find_elements(By.CSS_SELECTOR, "#inputs tbody tr")]
    driver.save_screenshot(os.path.join(screenshots, "batch-page.png"))
    seen["console"] = driver.get_log("browser")
finally:
    driver.quit()
json.dump(seen, open(output_path, "w"), indent=1)
