#!/usr/bin/env python3
"""The dashboard in a real browser: headless Chromium (Debian's chromium + chromium-driver),
driven over WebDriver by python3-selenium, against dashboard_demo (tests/dashboard/demo_main.cpp)
serving runs it made in a private redis-server. What a user would check: the run list and its
filters, a run's timeline (one bar per step attempt, in the trace's lanes), a live run growing
while watched, cancel refused without the token and done with it, retry of a failed run, a
string output full of HTML shown as text, the workers, and the `flux` tool's dashboard handing a
retry to a driver; screenshots of the list and of a 200-step
run's timeline are saved in --out and their size checked.

Run by CTest (label `browser`): browser_test.py --demo PATH --out DIR
"""
import argparse
import json
import os
import shutil
import socket
import struct
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.request

from selenium import webdriver
from selenium.common.exceptions import NoAlertPresentException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select, WebDriverWait

ARGS = None
TOKEN = "browser-test-token"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def png_size(path):
    with open(path, "rb") as f:
        head = f.read(24)
    assert head[:8] == b"\x89PNG\r\n\x1a\n", path + " is not a PNG"
    return struct.unpack(">II", head[16:24])


class Env:
    """A private redis-server, the demo serving the dashboard, and a headless Chromium."""

    def __init__(self):
        self.tmp = tempfile.mkdtemp(prefix="flux-browser-")
        self.redis_port = free_port()
        self.redis = subprocess.Popen(
            ["redis-server", "--port", str(self.redis_port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no", "--dir", self.tmp],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.store = "redis://127.0.0.1:%d" % self.redis_port
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", self.redis_port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.05)
        self.prefix = "browser"
        self.env = dict(os.environ, FLUX_STORE=self.store, FLUX_KEY_PREFIX=self.prefix)
        self.demo = subprocess.Popen(
            [ARGS.demo, "serve", "--store", self.store, "--prefix", self.prefix, "--token", TOKEN],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=self.env)
        self.runs = json.loads(self.demo.stdout.readline())
        line = self.demo.stdout.readline()
        assert "dashboard at http://127.0.0.1:" in line, line
        self.base = line.split()[2]  # http://127.0.0.1:PORT/
        self.started = []
        options = webdriver.ChromeOptions()
        options.binary_location = "/usr/bin/chromium"
        for a in ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                  "--window-size=1400,1000", "--user-data-dir=" + os.path.join(self.tmp, "chrome")]:
            options.add_argument(a)
        self.driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
        self.driver.set_page_load_timeout(30)

    def start(self, argv):
        """A run through the demo's flux::main (`run PIPELINE --input X`): its id."""
        p = subprocess.Popen([ARGS.demo] + argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, env=self.env)
        self.started.append(p)
        return p, p.stdout.readline().strip()

    def api(self, path):
        with urllib.request.urlopen(self.base.rstrip("/") + path, timeout=15) as r:
            return json.loads(r.read())

    def close(self):
        try:
            self.driver.quit()
        finally:
            for p in self.started + [self.demo]:
                if p.poll() is None:
                    p.terminate()
                    try:
                        p.wait(15)
                    except subprocess.TimeoutExpired:
                        p.kill()
            self.redis.terminate()
            self.redis.wait(10)
            shutil.rmtree(self.tmp, ignore_errors=True)


E = None


def setUpModule():
    global E
    E = Env()


def tearDownModule():
    if E:
        E.close()


def wait(condition, timeout=20, message=""):
    return WebDriverWait(E.driver, timeout, poll_frequency=0.1).until(
        lambda d: condition(), message)


def rows(css):
    return E.driver.find_elements(By.CSS_SELECTOR, css)


def attrs(css, name):
    """`name` of every element matching `css`, read at one moment (the page redraws live)."""
    return E.driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.getAttribute(arguments[1]))",
        css, name)


def texts(css):
    return E.driver.execute_script(
        "return [...document.querySelectorAll(arguments[0])].map(e => e.textContent)", css)


def open_page(fragment):
    E.driver.get(E.base + fragment)
    E.driver.refresh()  # a hash change alone does not reload the script's state


def open_run(run_id):
    open_page("#/runs/" + run_id)
    wait(lambda: E.driver.find_element(By.ID, "run-view").get_attribute("data-loaded") == "yes",
         message="run page loaded")


def status_of_page():
    return E.driver.find_element(By.ID, "r-status").get_attribute("data-status")


class Dashboard(unittest.TestCase):
    def test_1_run_list_shows_the_runs_newest_first_with_counts_and_filters_them(self):
        r = E.runs
        expected = [r["wide-200"], r["xss"], r["mendable"], r["fails"]] + r["double-inc"][::-1]
        open_page("")
        wait(lambda: len(rows("#runs tbody tr.run")) == 7, message="7 runs listed")
        self.assertEqual(attrs("#runs tbody tr.run", "data-id"), expected)
        first = texts("#runs tbody tr.run:nth-child(1) td")
        self.assertEqual(first[1], "wide-200")
        self.assertEqual(first[2], "completed")
        self.assertEqual(first[5], "201/201")  # steps done/total: inc and the 200 ticks
        fails_row = texts("#runs tbody tr.run:nth-child(4) td")
        self.assertEqual(fails_row[2], "failed")
        self.assertEqual(fails_row[5], "1/2")
        self.assertEqual(fails_row[6], "node 'boom' (step 1) failed: boom: the input was refused")
        counts = dict(zip(attrs("#counts button", "data-status"), texts("#counts button")))
        self.assertEqual(counts["completed"], "completed 5")
        self.assertEqual(counts["failed"], "failed 2")
        self.assertEqual(counts["running"], "running 0")

        E.driver.save_screenshot(os.path.join(ARGS.out, "dashboard-runs.png"))
        w, h = png_size(os.path.join(ARGS.out, "dashboard-runs.png"))
        self.assertGreaterEqual(w, 1200)
        self.assertGreaterEqual(h, 800)
        self.assertGreater(os.path.getsize(os.path.join(ARGS.out, "dashboard-runs.png")), 20000)

        Select(E.driver.find_element(By.ID, "f-status")).select_by_value("failed")
        E.driver.find_element(By.ID, "f-apply").click()
        wait(lambda: len(attrs("#runs tbody tr.run", "data-id")) == 2, message="2 failed runs")
        self.assertEqual(attrs("#runs tbody tr.run", "data-id"), [r["mendable"], r["fails"]])
        Select(E.driver.find_element(By.ID, "f-status")).select_by_value("")
        E.driver.find_element(By.ID, "f-pipeline").send_keys("double-inc")
        E.driver.find_element(By.ID, "f-apply").click()
        wait(lambda: attrs("#runs tbody tr.run", "data-id") == r["double-inc"][::-1],
             message="the 3 double-inc runs")
        E.driver.find_element(By.ID, "f-clear").click()
        E.driver.find_element(By.ID, "f-id").send_keys(r["xss"][:13])
        E.driver.find_element(By.ID, "f-apply").click()
        wait(lambda: attrs("#runs tbody tr.run", "data-id") == [r["xss"]],
             message="the run found by its id prefix")
        E.driver.find_element(By.ID, "f-clear").click()
        wait(lambda: len(rows("#runs tbody tr.run")) == 7, message="filters cleared")

    def test_2_a_200_step_runs_timeline_has_one_bar_per_step_attempt_in_the_traces_lanes(self):
        run_id = E.runs["wide-200"]
        E.driver.set_window_size(1400, 1000)
        open_run(run_id)
        wait(lambda: len(rows("#timeline .bar")) > 0, message="timeline drawn")
        detail = E.api("/api/runs/%s?trace=1" % run_id)
        node_entries = [e for e in detail["history"] if e["type"] == "node"]
        self.assertEqual(len(node_entries), 201)
        bars = rows("#timeline .bar")
        self.assertEqual(len(bars), len(node_entries))
        # Each bar in the lane the run's Chrome trace gives its step (as `flux runs export`).
        trace = detail["trace"]["traceEvents"]
        lane_name = {e["tid"]: e["args"]["name"] for e in trace if e.get("name") == "thread_name"}
        expected = {str(e["args"]["seq"]): lane_name[e["tid"]] for e in trace
                    if e.get("ph") == "X" and e.get("cat") == "node"}
        drawn = {b.get_attribute("data-seq"): b.get_attribute("data-lane") for b in bars}
        self.assertEqual(drawn, expected)
        lanes = [g.get_attribute("data-lane") for g in rows("#timeline g.lane")]
        self.assertEqual(sorted(lanes), sorted(lane_name.values()))
        self.assertGreaterEqual(len(lanes), 2)  # parallel branches overlap: more than one lane
        self.assertTrue(all(l.startswith("owner ") for l in lanes))
        self.assertTrue(all("ok" in b.get_attribute("class") for b in bars))
        self.assertEqual(len(rows("#history tbody tr.entry")), 202)

        timeline = E.driver.find_element(By.ID, "timeline")
        path = os.path.join(ARGS.out, "dashboard-timeline-200.png")
        timeline.screenshot(path)
        w, h = png_size(path)
        self.assertGreaterEqual(w, 900)
        self.assertGreaterEqual(h, 22 * len(lanes))
        self.assertGreater(os.path.getsize(path), 5000)
        E.driver.save_screenshot(os.path.join(ARGS.out, "dashboard-run-200.png"))

        # A failed run: its one bar is red and the hover text names the error.
        open_run(E.runs["fails"])
        wait(lambda: len(rows("#timeline .bar")) == 2, message="2 bars")
        failed = rows("#timeline .bar.failed")
        self.assertEqual(len(failed), 1)
        self.assertEqual(failed[0].get_attribute("data-step"), "1")
        webdriver.ActionChains(E.driver).move_to_element(failed[0]).perform()
        tip = E.driver.find_element(By.ID, "tip")
        wait(lambda: tip.is_displayed(), message="hover text")
        self.assertIn("boom [1]", tip.text)
        self.assertIn("attempt 1", tip.text)
        self.assertIn("error: node 'boom' (step 1) failed: boom: the input was refused", tip.text)

    def test_3_a_string_output_full_of_html_is_shown_as_text(self):
        open_run(E.runs["xss"])
        output = E.driver.find_element(By.ID, "r-output")
        self.assertEqual(output.text,
                         '"<script>alert(1)</script><img src=x onerror=alert(2)>"')
        row = rows("#history tbody tr.entry")[1]
        row.click()
        wait(lambda: len(rows("#history tr.values pre.value")) == 2, message="values expanded")
        self.assertIn("<script>alert(1)</script>", rows("#history tr.values pre.value")[1].text)
        self.assertEqual(len(rows("img")), 0)
        self.assertEqual(len(rows("main script")), 0)
        with self.assertRaises(NoAlertPresentException):
            E.driver.switch_to.alert.text

    def test_4_a_live_run_updates_while_watched_and_pauses(self):
        proc, run_id = E.start(["run", "live", "--input", "0"])
        open_run(run_id)
        self.assertEqual(status_of_page(), "running")
        seen = len(rows("#history tbody tr.entry"))
        wait(lambda: len(rows("#history tbody tr.entry")) > seen + 1, timeout=15,
             message="history grows without a reload")
        self.assertEqual(len(rows("#timeline .bar")), len(rows("#history tbody tr.entry")))
        # Paused: nothing changes while the run goes on.
        E.driver.find_element(By.ID, "live").click()
        paused_at = len(rows("#history tbody tr.entry"))
        time.sleep(1.5)  # three steps' worth
        self.assertEqual(len(rows("#history tbody tr.entry")), paused_at)
        E.driver.find_element(By.ID, "live").click()
        wait(lambda: status_of_page() == "completed", timeout=20, message="run completed")
        self.assertEqual(len(rows("#history tbody tr.entry")), 12)
        self.assertEqual(len(rows("#timeline .bar")), 12)
        self.assertEqual(E.driver.find_element(By.ID, "r-output").text, "12")
        self.assertEqual(proc.wait(15), 0)

    def test_5_cancel_is_refused_without_the_token_and_done_with_it_then_resumed(self):
        proc, run_id = E.start(["run", "sleepy", "--input", "12000"])
        open_run(run_id)
        self.assertEqual(status_of_page(), "running")
        token = E.driver.find_element(By.ID, "token")
        token.clear()
        E.driver.execute_script("sessionStorage.clear()")
        cancel = E.driver.find_element(By.ID, "a-cancel")
        self.assertTrue(cancel.is_displayed())
        cancel.click()
        message = E.driver.find_element(By.ID, "message")
        wait(lambda: "cancel refused" in message.text, message="refusal shown")
        self.assertIn("this action needs the token (header X-Flux-Token)", message.text)
        time.sleep(0.5)
        self.assertEqual(E.api("/api/runs/" + run_id)["run"]["status"], "running")

        token.send_keys("wrong")
        cancel.click()
        wait(lambda: "wrong token" in message.text, message="wrong token refused")
        token.clear()
        token.send_keys(TOKEN)
        cancel.click()
        wait(lambda: message.text.startswith("cancel: "), message="cancel accepted")
        wait(lambda: status_of_page() == "cancelled", timeout=30, message="run cancelled")
        self.assertIn("cancelled from the dashboard", E.driver.find_element(By.ID, "r-error").text)
        self.assertEqual(E.api("/api/runs/" + run_id)["run"]["status"], "cancelled")
        # `run` exits 1 for a cancelled run, once the abandoned 12 s sleep has ended (its
        # thread is joined when the owner's Runtime is destroyed).
        self.assertEqual(proc.wait(40), 1)

        # Resumed from the dashboard (which has the pipelines): the abandoned step runs again.
        resume = E.driver.find_element(By.ID, "a-resume")
        wait(lambda: resume.is_displayed(), message="resume offered for a cancelled run")
        resume.click()
        wait(lambda: message.text.startswith("resume: "), message="resume accepted")
        wait(lambda: status_of_page() == "completed", timeout=40, message="resumed run completed")
        self.assertEqual(E.driver.find_element(By.ID, "r-output").text, "12001")
        types = [e["type"] for e in E.api("/api/runs/" + run_id)["history"]]
        self.assertIn("cancel", types)
        self.assertIn("resume", types)

    def test_6_retry_from_failure_finishes_a_failed_run(self):
        run_id = E.runs["mendable"]
        open_run(run_id)
        self.assertEqual(status_of_page(), "failed")
        E.driver.find_element(By.ID, "token").clear()
        E.driver.find_element(By.ID, "token").send_keys(TOKEN)
        retry = E.driver.find_element(By.ID, "a-retry")
        self.assertTrue(retry.is_displayed())
        retry.click()
        wait(lambda: status_of_page() == "completed", timeout=30, message="retried run completed")
        self.assertEqual(E.driver.find_element(By.ID, "r-output").text, "50")
        attempts = [e["attempt"] for e in E.api("/api/runs/" + run_id)["history"]
                    if e["node"] == "flaky"]
        self.assertEqual(attempts, [1, 2])

    def test_7_a_parent_and_its_child_link_to_each_other(self):
        proc, parent = E.start(["run", "parent", "--input", "5"])
        self.assertEqual(proc.wait(30), 0)
        detail = E.api("/api/runs/" + parent)
        self.assertEqual(len(detail["children"]), 1)
        child = detail["children"][0]["id"]
        self.assertEqual(detail["children"][0]["step"], "1")
        self.assertEqual(detail["children"][0]["status"], "completed")
        open_run(parent)
        self.assertEqual(E.driver.find_element(By.ID, "r-output").text, "14")  # (5+1+1)*2
        links = rows("#related li.related a")
        self.assertEqual([a.text for a in links], [child])
        self.assertIn("child of step 1 (spawn)", rows("#related li.related")[0].text)
        links[0].click()
        wait(lambda: texts("#related li.related a") == [parent], message="the child links back")
        self.assertEqual(E.driver.find_element(By.ID, "r-id").text, child)
        self.assertIn("parent (step 1)", texts("#related li.related")[0])
        self.assertEqual(E.api("/api/runs/" + child)["parent"]["id"], parent)

    def test_8_workers_are_listed(self):
        env = dict(E.env, FLUX_ID="browser-worker-1", FLUX_CAPACITY="2")
        p = subprocess.Popen([ARGS.demo, "worker"], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
        E.started.append(p)
        self.assertTrue(p.stdout.readline().startswith("worker browser-worker-1 serving"))
        open_page("#/workers")
        wait(lambda: len(rows("#workers tbody tr.worker")) == 1, message="one worker")
        cells = rows("#workers tbody tr.worker")[0].find_elements(By.TAG_NAME, "td")
        self.assertEqual(cells[0].text, "browser-worker-1")
        self.assertEqual(cells[2].text, "0 / 2")
        self.assertIn("xss", cells[6].text)
        p.terminate()
        self.assertEqual(p.wait(30), 0)

    def test_9_the_flux_tools_dashboard_hands_a_retry_to_a_driver(self):
        # The installed `flux` tool's dashboard, which has no pipelines, on the same store.
        tool = subprocess.Popen(
            [ARGS.flux, "dashboard", "--listen", "127.0.0.1:0", "--token", TOKEN],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=E.env)
        E.started.append(tool)
        line = tool.stdout.readline()
        self.assertIn("dashboard at http://127.0.0.1:", line)
        base = line.split()[2]
        proc, run_id = E.start(["run", "mendable", "--input", "7"])
        self.assertEqual(proc.wait(30), 1)  # flaky is not mended in this process
        E.driver.get(base + "#/runs/" + run_id)
        E.driver.refresh()
        wait(lambda: E.driver.find_element(By.ID, "run-view").get_attribute("data-loaded") == "yes",
             message="run page loaded")
        self.assertEqual(status_of_page(), "failed")
        E.driver.find_element(By.ID, "token").clear()
        E.driver.find_element(By.ID, "token").send_keys(TOKEN)
        retry = E.driver.find_element(By.ID, "a-retry")
        self.assertTrue(retry.is_displayed())
        retry.click()
        message = E.driver.find_element(By.ID, "message")
        wait(lambda: "handed to a driver adopting pipeline 'mendable'" in message.text,
             message="retry handed to a driver")
        request = lambda: E.driver.find_elements(By.ID, "r-request")
        wait(lambda: request() and request()[0].get_attribute("data-state") == "pending",
             message="the pending request shown")
        self.assertIn("waiting for a driver adopting pipeline 'mendable'", request()[0].text)
        # A driver that adopts the pipeline (and whose flaky step is mended) takes it.
        driver = subprocess.Popen([ARGS.demo, "driver", "--local"], stdout=subprocess.PIPE,
                                  stderr=subprocess.PIPE, text=True,
                                  env=dict(E.env, DASHBOARD_DEMO_MENDED="1"))
        E.started.append(driver)
        wait(lambda: status_of_page() == "completed", timeout=40, message="retried run completed")
        self.assertEqual(E.driver.find_element(By.ID, "r-output").text, "80")  # (7 + 1) * 10
        self.assertEqual(E.driver.find_element(By.ID, "r-steps").text, "2/2")
        wait(lambda: not request(), message="the request cleared")
        types = [e["type"] for e in E.api("/api/runs/" + run_id)["history"]]
        self.assertEqual(types, ["node", "node", "resume", "node"])
        driver.terminate()
        self.assertEqual(driver.wait(30), 0)
        tool.terminate()
        self.assertEqual(tool.wait(30), 0)


def main():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--demo", required=True)
    parser.add_argument("--flux", required=True)
    parser.add_argument("--out", required=True)
    ARGS, rest = parser.parse_known_args()
    os.makedirs(ARGS.out, exist_ok=True)
    result = unittest.main(argv=[sys.argv[0], "-v"] + rest, exit=False).result
    sys.exit(0 if result.wasSuccessful() else 1)


if __name__ == "__main__":
    main()
