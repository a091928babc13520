"""The user-study site in a real browser (headless Chromium through Selenium): a scripted participant
takes the whole study from file:// and through `pgpis user-study serve`, by click and by keyboard.

Checked: each part-2 picture is shown for its exposure and then hidden (timed in the page by a
MutationObserver independent of the page's own code), answering is impossible while it is shown, a
reload resumes where the participant stopped (from local storage, and from the server with local
storage wiped), the downloaded file and the database hold exactly the clicks made, and the scores are
the ones the scripted answers imply. Screenshots of every screen go to tests/artifacts/user_study/
(not committed). Skipped only where no Chromium/chromedriver exists (CI installs them: setup.sh).
"""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from _runs import fake_runs
from _study import make

from bench.report.user_study import key_sha256, load_key
from bench.report.user_study_score import score_study
from bench.report.user_study_server import StudyServer
from bench.report.user_study_site import read_site_data

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts" / "user_study"
EXPOSURE_MS = 200
# The page hides the picture on the first frame at least the exposure (minus half a frame) after the
# frame that showed it; a loaded 2-core machine may drop a frame or two.
TOLERANCE_MS = (-12, 100)

# Records, with the page's clock, when the stimulus becomes visible and hidden: the page's own timing
# code is not trusted to time itself.
OBSERVER = """
window.__shown = [];
new MutationObserver(function () {
  var img = document.getElementById('stimulus');
  if (!img) return;
  var v = img.style.visibility, item = document.querySelector('#real-fake').dataset.item;
  var last = window.__shown[window.__shown.length - 1];
  if (v === 'visible' && (!last || last.item !== item)) window.__shown.push({item: item, on: performance.now()});
  if (v === 'hidden' && last && last.item === item && last.off === undefined && last.on !== undefined)
    last.off = performance.now();
}).observe(document.getElementById('app'), {subtree: true, attributes: true, attributeFilter: ['style'], childList: true});
"""


# While the picture is shown, try to answer (a key press and a click, in the same task as the check,
# so the exposure cannot end between the two): the page must ignore both.
STIMULUS = """(function () {
  var i = document.getElementById('stimulus'), b = document.getElementById('answer-real');
  if (!i || !b) return '';
  if (i.style.visibility === 'visible') {
    if (!b.disabled) return 'BUG: answerable while shown';
    document.dispatchEvent(new KeyboardEvent('keydown', {key: 'r', bubbles: true}));
    b.click();
    return 'shown';
  }
  return b.disabled ? '' : 'ready';
})()"""


def _browser_paths() -> tuple[str, str]:
    browser = next(
        (shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None
    )
    driver = shutil.which("chromedriver")
    try:
        import selenium  # noqa: F401
    except ImportError:
        browser = None
    if not browser or not driver:
        reason = (
            "no headless browser here: the user-study browser tests need chromium and chromedriver "
            "(Debian: apt-get install chromium chromium-driver; scripts/setup.sh does it as root) and the "
            "selenium package (pip install -e '.[dev]')"
        )
        if os.environ.get("CI"):
            pytest.fail(reason + "; CI must run them")
        pytest.skip(reason)
    return browser, driver


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def chrome(downloads: Path) -> Iterator[Any]:
    browser, driver_path = _browser_paths()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                "--window-size=1000,900", "--hide-scrollbars"):  # fmt: skip
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs", {"download.default_directory": str(downloads), "download.prompt_for_download": False}
    )
    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    print(f"\nuser-study screenshots: {ARTIFACTS}")
    yield driver
    driver.quit()


@pytest.fixture(scope="module")
def study(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("browser-study")
    runs = fake_runs(tiny_root, tmp / "generated", ("alpha", "beta"))
    extra = ("--questions", "3", "--exposure-ms", str(EXPOSURE_MS), "--size", "256x176")
    assert make(tiny_root, runs, tmp / "study", *extra) == 0
    return tmp / "study"


def _choice(spec: dict[str, Any], k: int) -> str:
    """The scripted participant: picks beta, passes the check, calls every third picture wrongly."""
    if spec["part"] == "attention":
        return spec["correct"]
    if spec["part"] == "best":
        return next(letter for letter, label in spec["options"].items() if label == "beta")
    right = spec["truth"]
    return right if k % 3 else {"real": "generated", "generated": "real"}[right]


def _screen(driver: Any) -> tuple[str, str | None]:
    return tuple(
        driver.execute_script(
            "var s = document.querySelector('main section'); return s ? [s.id, s.dataset.item || null] : ['', null];"
        )
    )


def _wait(driver: Any, condition: str, timeout: float = 10.0) -> Any:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        value = driver.execute_script("return " + condition)
        if value:
            return value
        time.sleep(0.01)
    raise AssertionError(f"timed out waiting for: {condition}")


class Participant:
    def __init__(self, driver: Any, key: dict[str, Any], shots: str):
        self.driver, self.key, self.shots = driver, key, shots
        self.given: dict[str, str] = {}
        self.seen: set[str] = set()

    def shot(self, name: str) -> None:
        if name not in self.seen:
            self.seen.add(name)
            self.driver.save_screenshot(str(ARTIFACTS / f"{self.shots}-{len(self.seen):02d}-{name}.png"))

    def open(self, url: str, typed: str = "") -> None:
        self.driver.get(url)
        _wait(self.driver, "document.getElementById('start')")
        if typed:  # no id in the URL: the participant types it; an invalid one is refused first
            field = self.driver.find_element("id", "participant")
            field.send_keys("no spaces allowed")
            self.driver.find_element("id", "start").click()
            assert (
                "Please enter your participant ID" in self.driver.find_element("id", "participant-error").text
            )
            field.clear()
            field.send_keys(typed)
        self.shot("welcome")
        self.driver.find_element("id", "start").click()
        _wait(
            self.driver,
            "document.querySelector('main section') && document.querySelector('main section').id !== 'welcome'",
        )
        self.driver.execute_script(OBSERVER)

    def answer(self, stop_after: int | None = None) -> None:
        """Answer until the end (or until ``stop_after`` answers in all)."""
        from selenium.webdriver.common.by import By
        from selenium.webdriver.common.keys import Keys

        body = self.driver.find_element(By.TAG_NAME, "body")
        deadline = time.monotonic() + 120
        while stop_after is None or len(self.given) < stop_after:
            assert time.monotonic() < deadline, (
                f"stuck on {_screen(self.driver)} after {len(self.given)} answers"
            )
            screen, item = _screen(self.driver)
            if screen == "done":
                return
            if screen == "block-intro":
                self.shot("block-intro")
                body.send_keys(Keys.SPACE)
                _wait(self.driver, "document.querySelector('#real-fake')")
                continue
            if item is None or item in self.given:
                time.sleep(0.01)
                continue
            spec = self.key["items"][item]
            value = _choice(spec, len(self.given))
            by_key = len(self.given) % 2 == 1  # alternate keyboard and mouse
            if screen == "best":
                _wait(self.driver, "!document.querySelector('button.option').disabled")
                self.shot("attention-check" if spec["part"] == "attention" else "question")
                if by_key:
                    body.send_keys(value.lower())
                else:
                    self.driver.find_element(By.CSS_SELECTOR, f"button[data-option='{value}']").click()
            else:
                state = _wait(self.driver, STIMULUS)
                assert not state.startswith("BUG"), state
                if state == "shown":  # (a loaded machine may miss the 200 ms)
                    self.shot("picture-shown")
                _wait(self.driver, "!document.getElementById('answer-real').disabled")
                assert self.driver.execute_script(
                    "var i = document.getElementById('stimulus'); return i.style.visibility === 'hidden' && !i.src"
                ), "the picture must be gone once answering is possible"
                self.shot("picture-hidden")
                if by_key:
                    body.send_keys(value[0])
                else:
                    self.driver.find_element(By.ID, f"answer-{value}").click()
            self.given[item] = value
            _wait(self.driver, f"(document.querySelector('main section') || {{}}).dataset === undefined || "
                  f"document.querySelector('main section').dataset.item !== '{item}'")  # fmt: skip
        return

    def exposures(self) -> list[dict[str, Any]]:
        return self.driver.execute_script("return window.__shown || []")

    def stored(self, study_id: str, key_hash: str, participant: str) -> dict[str, Any]:
        raw = self.driver.execute_script(
            "return localStorage.getItem(arguments[0])", f"pgpis-study:{study_id}:{key_hash}:{participant}"
        )
        return json.loads(raw)


def _expected_scores(key: dict[str, Any], choices: list[dict[str, str]]) -> dict[str, Any]:
    runs = {label: {"jab": [0, 0], "g2r": [0, 0], "r2g": [0, 0]} for label in key["runs"]}
    for given in choices:
        for item, value in given.items():
            spec = key["items"][item]
            if spec["part"] == "best":
                for label in runs:
                    runs[label]["jab"][1] += 1
                runs[spec["options"][value]]["jab"][0] += 1
            elif spec["part"] == "real_fake":
                metric = "g2r" if spec["truth"] == "generated" else "r2g"
                runs[spec["run"]][metric][0] += value != spec["truth"]
                runs[spec["run"]][metric][1] += 1
    return runs


def _check_scores(scores: dict[str, Any], expected: dict[str, Any]) -> None:
    for label, metrics in expected.items():
        for name, (count, n) in metrics.items():
            got = scores["runs"][label][f"user_{name}"]
            assert (got["count"], got["n"]) == (count, n), (label, name)


def _check_exposures(participant: Participant, file_answers: list[dict[str, Any]], exposure: int) -> None:
    observed = {e["item"]: e["off"] - e["on"] for e in participant.exposures() if "off" in e}
    recorded = {a["item"]: a["shown_ms"] for a in file_answers if a["shown_ms"] is not None}
    assert observed and set(observed) <= set(recorded)
    for item, ms in observed.items():
        assert exposure + TOLERANCE_MS[0] <= ms <= exposure + TOLERANCE_MS[1], (item, ms)
        assert abs(recorded[item] - ms) <= 20, (item, recorded[item], ms)  # the page measures what it shows


def _check_order(key: dict[str, Any], answered: list[str]) -> None:
    """Every item once; part 1 first, then the blocks, each whole (the orders within are the participant's)."""
    assert sorted(answered) == sorted(key["items"])
    parts = [key["items"][i]["part"] != "real_fake" for i in answered]
    assert parts == sorted(parts, reverse=True)
    blocks = [key["items"][i]["block"] for i in answered if key["items"][i]["part"] == "real_fake"]
    assert len([b for k, b in enumerate(blocks) if k == 0 or blocks[k - 1] != b]) == len(set(blocks))


def _download(driver: Any, downloads: Path, name: str) -> dict[str, Any]:
    target = downloads / name
    target.unlink(missing_ok=True)
    driver.find_element("id", "download").click()
    end = time.monotonic() + 10
    while not target.is_file() and time.monotonic() < end:
        time.sleep(0.05)
    assert target.is_file(), (
        f"no download {name} in {downloads}: {sorted(p.name for p in downloads.iterdir())}"
    )
    return json.loads(target.read_text())


def test_a_participant_takes_the_study_from_file(chrome: Any, study: Path, downloads: Path) -> None:
    started = time.monotonic()
    key = load_key(study)
    data_study = read_site_data(study / "site")["study"]
    url = (study / "site" / "index.html").as_uri() + "?participant=P1"
    p = Participant(chrome, key, "file")
    p.open(url)
    half = len(key["items"]) // 2 + 1  # stop inside part 2
    p.answer(stop_after=half)
    before = p.stored(data_study["id"], data_study["key_sha256"], "P1")
    assert [a["item"] for a in before["answers"]] == list(p.given)
    chrome.refresh()  # a reload resumes at the first unanswered item; given answers stay as they were
    p.open(url)
    p.shot("resumed")
    assert _screen(chrome)[0] in ("block-intro", "real-fake")
    text = chrome.find_element("id", "progress-text").text
    assert text == f"Question {half + 1} of {len(key['items'])}", text
    p.answer()
    assert _screen(chrome)[0] == "done"
    p.shot("done")
    record = _download(chrome, downloads, f"answers-{data_study['id']}-P1.json")
    assert record["study"] == data_study and record["participant"] == "P1"
    assert {a["item"]: a["answer"] for a in record["answers"]} == p.given
    _check_order(key, [a["item"] for a in record["answers"]])
    assert all(a["response_ms"] >= 0 for a in record["answers"])
    _check_exposures(p, record["answers"], EXPOSURE_MS)
    answers = downloads / f"answers-{data_study['id']}-P1.json"
    _check_scores(score_study(key, [answers]), _expected_scores(key, [p.given]))
    print(f"file:// participant: {len(key['items'])} items in {time.monotonic() - started:.1f} s")


@pytest.fixture
def served(study: Path, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    db = tmp_path / "answers.sqlite"
    server = StudyServer(study / "site", db, port=0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/", db
    server.shutdown()
    server.server_close()
    thread.join()


def test_participants_take_the_served_study(chrome: Any, study: Path, served, downloads: Path) -> None:
    started = time.monotonic()
    base, db = served
    key = load_key(study)
    people: dict[str, dict[str, str]] = {}
    for name in ("P2", "P3"):
        p = Participant(chrome, key, f"served-{name}")
        p.open(base + f"?participant={name}")
        p.answer(stop_after=4)
        with sqlite3.connect(db) as con:  # stored the moment each was given
            rows = con.execute("SELECT item, answer FROM answers WHERE participant = ?", (name,)).fetchall()
        assert dict(rows) == p.given
        chrome.execute_script("localStorage.clear()")  # the server alone must resume the participant
        chrome.refresh()
        p.open(base + f"?participant={name}")
        assert chrome.find_element("id", "progress-text").text.startswith(f"Question {len(p.given) + 1} of")
        p.answer()
        people[name] = p.given
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT participant, item, answer, response_ms, shown_ms FROM answers ORDER BY rowid"
        ).fetchall()
    orders = {n: [r[1] for r in rows if r[0] == n] for n in people}
    for seen in orders.values():
        _check_order(key, seen)
    assert orders["P2"] != orders["P3"]  # each participant has an order of their own
    assert {(r[0], r[1]): r[2] for r in rows} == {(n, i): v for n, g in people.items() for i, v in g.items()}
    assert all(r[3] is not None and (r[4] is not None) == r[1].startswith("b") for r in rows)
    p.shot("done-served")
    record = _download(chrome, downloads, f"answers-{key['study_id']}-P3.json")
    scores = score_study(key, [downloads / f"answers-{key['study_id']}-P3.json"], db=db)
    assert len(scores["duplicates"]) == 1  # P3 from the database and from the file: once
    _check_scores(scores, _expected_scores(key, list(people.values())))
    assert {a["item"]: a["answer"] for a in record["answers"]} == people["P3"]
    print(f"served participants: 2 x {len(key['items'])} items in {time.monotonic() - started:.1f} s")


def test_the_default_exposure_is_one_second(chrome: Any, tiny_root: Path, tmp_path: Path) -> None:
    runs = fake_runs(tiny_root, tmp_path / "generated", ("alpha", "beta"))
    assert (
        make(
            tiny_root, runs, tmp_path / "s", "--questions", "0", "--attention-checks", "0", "--real-fake", "1"
        )
        == 0
    )
    p = Participant(chrome, load_key(tmp_path / "s"), "default")
    p.open((tmp_path / "s" / "site" / "index.html").as_uri(), typed="D1")
    p.answer(stop_after=1)
    assert [
        a["item"] for a in p.stored(load_key(tmp_path / "s")["study_id"], key_sha256(p.key), "D1")["answers"]
    ] == list(p.given)
    _wait(chrome, "window.__shown.length && window.__shown[0].off !== undefined")
    shown = p.exposures()[0]
    assert 1000 + TOLERANCE_MS[0] <= shown["off"] - shown["on"] <= 1000 + TOLERANCE_MS[1], shown


def test_an_answer_given_while_the_server_is_down_is_stored_when_it_returns(
    chrome: Any, study: Path, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    db = tmp_path / "answers.sqlite"

    def start(port: int) -> tuple[StudyServer, threading.Thread]:
        server = StudyServer(study / "site", db, port=port)
        thread = threading.Thread(target=server.serve_forever, daemon=True)
        thread.start()
        return server, thread

    def stop(server: StudyServer, thread: threading.Thread) -> None:
        server.shutdown()
        server.server_close()
        thread.join()

    server, thread = start(0)
    port = server.server_address[1]
    key = load_key(study)
    p = Participant(chrome, key, "outage")
    p.open(f"http://127.0.0.1:{port}/?participant=P4")
    p.answer(stop_after=1)
    stop(server, thread)
    _wait(chrome, "!document.querySelector('button.option').disabled")
    item = _screen(chrome)[1]
    value = _choice(key["items"][item], 1)
    chrome.find_element(By.CSS_SELECTOR, f"button[data-option='{value}']").click()
    _wait(chrome, "!document.getElementById('notice').hidden")  # says so, keeps the answer, retries
    p.shot("server-down")
    assert _screen(chrome)[1] == item
    server, thread = start(port)
    try:
        _wait(chrome, f"document.querySelector('main section').dataset.item !== '{item}'")
        with sqlite3.connect(db) as con:
            stored = dict(con.execute("SELECT item, answer FROM answers WHERE participant = 'P4'").fetchall())
        assert stored == {**p.given, item: value}
        assert chrome.find_element(By.ID, "notice").get_attribute("hidden") is not None
    finally:
        stop(server, thread)
