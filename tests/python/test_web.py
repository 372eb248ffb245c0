"""The web cluster manager by clicks in a real Chromium (Debian's chromium and chromium-driver,
driven by Selenium): the tutorial's Step 4 (start the data and compute nodes from the Nodes
page), chapter 2 (Nodes Config saved and found in every controller's cluster.cfg), Step 5 in
a data node's Shell, §5.2's DFS view with two replica sites per partition, Step 6 in a compute
node's Shell with `result` opened from Local Variables, and the Dashboard.

Screenshots of each page go to $PORPOISE_SCREENSHOTS (docs/web/ holds a set) or a temporary
directory."""
import os
import shutil
import tempfile
import time

import pytest

from local_cluster import HOSTS, IPS, agents_topology, login, script

from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException, WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as EC
from selenium.webdriver.support.ui import WebDriverWait

CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER", "/usr/bin/chromedriver")
SHOTS = os.environ.get("PORPOISE_SCREENSHOTS") or tempfile.mkdtemp(prefix="porpoise-shots-")


@pytest.fixture(scope="module")
def web():
    binary = os.environ.get("PORPOISE_BIN")
    if not binary:
        pytest.fail("set PORPOISE_BIN to the porpoise binary")
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("install Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    profile = tempfile.mkdtemp(prefix="porpoise-chromium-")
    # The flags keep Chromium off the network this machine does not have (no background
    # fetches, no updates, no sync).
    for a in ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
              "--disable-background-networking", "--disable-component-update", "--disable-sync",
              "--window-size=1400,1000", f"--user-data-dir={profile}"]:
        options.add_argument(a)
    with agents_topology(binary) as (root, leader):
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        try:
            yield driver, root, leader
        finally:
            driver.quit()
            shutil.rmtree(profile, ignore_errors=True)


def wait(d, seconds=30):
    return WebDriverWait(d, seconds, ignored_exceptions=[StaleElementReferenceException])


def until(d, what, check, seconds=30):
    """Waits for `check(d)` to be truthy (retrying through re-rendered elements)."""
    def attempt(d):
        try:
            return check(d)
        except (StaleElementReferenceException, WebDriverException):
            return False
    try:
        return wait(d, seconds).until(attempt)
    except Exception:
        shot(d, "failed-" + what.replace(" ", "-")[:40])
        raise AssertionError(f"timed out waiting for {what}")


def click(d, css, seconds=30):
    """Clicks the element `css` names, again if the page re-rendered it under the click."""
    until(d, f"a click on {css}", lambda d: d.find_element(By.CSS_SELECTOR, css).click() or True, seconds)


def shot(d, name):
    d.save_screenshot(os.path.join(SHOTS, f"{name}.png"))


def log_in(d):
    until(d, "the login form", lambda d: d.find_element(By.ID, "login-password").is_displayed())
    d.find_element(By.ID, "login-password").send_keys("123456")
    d.find_element(By.ID, "login-submit").click()
    until(d, "the login to finish", lambda d: not d.find_element(By.ID, "login").is_displayed())
    assert d.find_element(By.ID, "user-name").text == "admin"


def set_editor(d, text):
    d.execute_script("const e = document.getElementById('editor'); e.value = arguments[0];"
                     "e.dispatchEvent(new Event('input'));", text)


def run_editor(d, seconds=180):
    """Runs the editor with Ctrl+Enter; the status once it is no longer running."""
    d.find_element(By.ID, "editor").send_keys(Keys.CONTROL, Keys.ENTER)
    return until(d, "the script to finish",
                 lambda d: (t := d.find_element(By.ID, "shell-status").text) and t != "Running…" and t, seconds)


def test_a_follower_sends_the_browser_to_the_leader_and_admin_logs_in(web):
    d, root, leader = web
    follower = next(ip for ip in IPS if ip != leader[0])
    d.get(f"http://{follower}:8800/")
    alert = wait(d, 15).until(EC.alert_is_present())
    assert "not the leader of the Raft group" in alert.text and f"{leader[0]}:8800" in alert.text, alert.text
    alert.accept()
    until(d, "the leader's page", lambda d: d.current_url.startswith(f"http://{leader[0]}:8800/"))
    until(d, "the login form", lambda d: d.find_element(By.ID, "login-password").is_displayed())
    shot(d, "login")
    log_in(d)


def test_step_4_start_the_data_and_compute_nodes_from_the_nodes_page(web):
    d, root, leader = web
    until(d, "the Nodes page", lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-node="agent1"]'))
    names = [e.get_attribute("data-node") for e in d.find_elements(By.CSS_SELECTOR, "#nodes-table tr[data-node]")]
    for n in ["controller1", "controller2", "controller3", "agent1", "agent2", "agent3",
              "datanode1", "datanode2", "datanode3", "computenode1", "computenode2", "computenode3"]:
        assert n in names, names
    assert d.find_element(By.CSS_SELECTOR, 'tr[data-node="datanode2"]').get_attribute("data-state") == "offline"
    for n in ["datanode1", "datanode2", "datanode3", "computenode1"]:
        click(d, f'input[data-node="{n}"]')
    click(d, "#nodes-start")
    for n in ["datanode1", "datanode2", "datanode3", "computenode1"]:
        until(d, f"{n} to turn green",
              lambda d: d.find_element(By.CSS_SELECTOR, f'tr[data-node="{n}"]').get_attribute("data-state") == "online", 90)
    mark = d.find_element(By.CSS_SELECTOR, 'tr[data-node="datanode2"] .state')
    assert mark.value_of_css_property("background-color") in ("rgba(47, 168, 79, 1)", "rgb(47, 168, 79)")
    assert d.find_element(By.CSS_SELECTOR, 'tr[data-node="computenode2"]').get_attribute("data-state") == "offline"
    # Wait for a login on each started node, not for its heartbeat alone.
    for ip in IPS:
        until(d, f"a login on {ip}:8802", lambda d: login(ip, 8802) is not None, 60)
    until(d, "a login on computenode1", lambda d: login(IPS[0], 8803) is not None, 60)
    shot(d, "nodes")


def test_chapter_2_a_nodes_config_change_is_in_every_controllers_cluster_cfg(web):
    d, root, leader = web
    d.get(f"http://{leader[0]}:8800/#nodes-config")
    until(d, "the Nodes Config keys", lambda d: d.find_elements(By.CSS_SELECTOR, "#page-nodes-config .config-key"))
    keys = {e.get_attribute("value"): e for e in d.find_elements(By.CSS_SELECTOR, "#page-nodes-config .config-key")}
    assert "maxMemSize" in keys and "workerNum" in keys, list(keys)
    value = keys["maxMemSize"].find_element(By.XPATH, "../..").find_element(By.CSS_SELECTOR, ".config-value")
    value.clear()
    value.send_keys("24")
    click(d, "#page-nodes-config .config-add")
    new_key = d.find_elements(By.CSS_SELECTOR, "#page-nodes-config .config-key")[-1]
    new_key.send_keys("datanode%.maxPubConnections")
    new_key.find_element(By.XPATH, "../..").find_element(By.CSS_SELECTOR, ".config-value").send_keys("32")
    click(d, "#page-nodes-config .config-save")
    until(d, "the save", lambda d: d.find_element(By.CSS_SELECTOR, "#page-nodes-config .config-message").text.startswith("Saved"))

    def everywhere():
        for h in HOSTS:
            with open(os.path.join(root, h, "config", "cluster.cfg")) as f:
                text = f.read()
            if "maxMemSize=24\n" not in text or "datanode%.maxPubConnections=32\n" not in text:
                return False
        return True
    until(d, "every controller's cluster.cfg", lambda d: everywhere(), 15)
    # A bad key is refused, named with its line, and nothing changes.
    click(d, "#page-nodes-config .config-add")
    d.find_elements(By.CSS_SELECTOR, "#page-nodes-config .config-key")[-1].send_keys("noSuchKey")
    click(d, "#page-nodes-config .config-save")
    until(d, "the refusal", lambda d: "CFG-013" in d.find_element(By.CSS_SELECTOR, "#page-nodes-config .config-message").text)
    shot(d, "nodes-config")
    click(d, "#page-nodes-config .config-reload")

    d.get(f"http://{leader[0]}:8800/#controller-config")
    until(d, "the Controller Config keys", lambda d: d.find_elements(By.CSS_SELECTOR, "#page-controller-config tr.own"))
    own = d.find_element(By.CSS_SELECTOR, "#page-controller-config tr.own .config-value")
    assert own.get_attribute("value").startswith(f"{leader[0]}:8800:controller") and own.get_attribute("readonly") is not None
    values = [e.get_attribute("value") for e in d.find_elements(By.CSS_SELECTOR, "#page-controller-config .config-key")]
    assert "dfsReplicationFactor" in values and "dfsHAMode" in values
    shot(d, "controller-config")


def test_step_5_in_the_shell_of_datanode1_opened_from_the_nodes_table(web):
    d, root, leader = web
    d.get(f"http://{leader[0]}:8800/#nodes")
    first = d.current_window_handle
    click(d, 'tr[data-node="datanode1"] a.node-link')
    until(d, "the node's window", lambda d: len(d.window_handles) == 2)
    d.switch_to.window(next(h for h in d.window_handles if h != first))
    until(d, "datanode1's page", lambda d: d.current_url.startswith(f"http://{IPS[0]}:8802/"))
    log_in(d)
    assert "datanode1" in d.find_element(By.ID, "node-name").text
    set_editor(d, script("tutorial_step5.dos"))
    assert d.find_elements(By.CSS_SELECTOR, "#editor-highlight .tok-kw"), "keywords are highlighted"
    status = run_editor(d)
    assert status.startswith("Done"), d.find_element(By.ID, "shell-result").text
    until(d, "testDB in the database tree", lambda d: d.find_element(By.CSS_SELECTOR, 'li[data-db="dfs://testDB"]'))
    click(d, 'li[data-db="dfs://testDB"] > span')
    assert d.find_element(By.CSS_SELECTOR, 'li[data-table="testTB"]').is_displayed()
    shot(d, "shell-datanode1-step5")
    # An error names its line and column; Ctrl+Enter runs only the selection.
    set_editor(d, "x = 1\ny = (2 +")
    run_editor(d)
    assert "Line 2" in d.find_element(By.CSS_SELECTOR, ".shell-error").text
    set_editor(d, "1 + 1\n2 + 40")
    d.execute_script("document.getElementById('editor').setSelectionRange(6, 12)")
    run_editor(d)
    assert d.find_element(By.CSS_SELECTOR, "#shell-result .result-value").text == "42"
    d.switch_to.window(first)


def test_section_5_2_the_dfs_page_shows_each_partition_on_two_hosts(web):
    d, root, leader = web
    d.get(f"http://{leader[0]}:8800/#dfs")
    click(d, 'tr[data-name="testDB"]')
    click(d, 'tr[data-name="20230108"]')
    until(d, "the partition's chunk", lambda d: d.find_element(By.CSS_SELECTOR, 'tr[data-name="testTB"] .sites').text)
    sites = d.find_element(By.CSS_SELECTOR, 'tr[data-name="testTB"] .sites').text.split(",")
    assert len(sites) == 2 and all(s.startswith("datanode") for s in sites), sites
    # dfsReplicaReliabilityLevel=1: the two replicas are on different hosts.
    assert sites[0] != sites[1]
    assert "COMPLETE" in d.find_element(By.CSS_SELECTOR, 'tr[data-name="testTB"]').text
    assert d.find_element(By.ID, "dfs-path").text == "dfs://testDB/20230108/"
    shot(d, "dfs")


def test_step_6_in_the_shell_of_computenode1_and_result_in_local_variables(web):
    d, root, leader = web
    d.get(f"http://{IPS[0]}:8803/#shell")
    log_in(d)
    set_editor(d, script("tutorial_step6.dos"))
    assert run_editor(d).startswith("Done"), d.find_element(By.ID, "shell-result").text
    click(d, 'tr.var[data-name="result"]')
    until(d, "result's preview", lambda d: d.find_element(By.CSS_SELECTOR, "#shell-result h4").text == "result")
    expected = len(login(IPS[0], 8803).run(
        'select first(LastPx) as Open from loadTable("dfs://testDB", "testTB") group by date(DateTime) as Date, SecurityID'))
    pager = d.find_element(By.CSS_SELECTOR, "#shell-result .pager").text
    assert f"of {expected}" in pager, pager
    headers = [h.text for h in d.find_elements(By.CSS_SELECTOR, "#shell-result .result-table th")]
    assert headers == ["Date", "SecurityID", "Open", "High", "Low", "Close"], headers
    row = d.find_element(By.CSS_SELECTOR, 'tr.var[data-name="result"]').text.split()
    assert row[:3] == ["result", "BASIC", "TABLE"] and row[3] == str(expected), row
    click(d, "#shell-result .page-next")
    assert "rows 21–40" in d.find_element(By.CSS_SELECTOR, "#shell-result .pager").text
    shot(d, "shell-computenode1-step6")


def test_the_dashboard_draws_every_nodes_metrics(web):
    d, root, leader = web
    d.get(f"http://{leader[0]}:8800/#dashboard")

    def drawn(d):
        chart = d.find_element(By.CSS_SELECTOR, '.chart[data-series="cpu"]')
        legend = chart.find_element(By.CSS_SELECTOR, ".legend").text
        return int(chart.get_attribute("data-points") or 0) >= 8 and "datanode1" in legend and "controller1" in legend
    until(d, "the charts", drawn, 40)
    for series in ["memory", "connections", "queries", "writes"]:
        assert d.find_element(By.CSS_SELECTOR, f'.chart[data-series="{series}"] canvas')
    time.sleep(2)
    shot(d, "dashboard")
