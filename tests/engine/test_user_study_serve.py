"""`pgpis user-study serve`: the API the page uses, the SQLite file, many participants at once."""

from __future__ import annotations

import json
import sqlite3
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from _runs import fake_runs
from _study import make, truthful

from bench.errors import ConfigError
from bench.report.user_study import load_key
from bench.report.user_study_score import score_study
from bench.report.user_study_server import StudyServer
from bench.report.user_study_site import read_site_data


@pytest.fixture(scope="module")
def study(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One study for the module (read-only; its runs are in the sibling folder generated/)."""
    tmp = tmp_path_factory.mktemp("study")
    assert make(tiny_root, fake_runs(tiny_root, tmp / "generated"), tmp / "study") == 0
    return tmp / "study"


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


def _call(url: str, body: dict | bytes | None = None) -> tuple[int, dict | bytes]:
    data = body if isinstance(body, bytes) or body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as r:
            raw, status, kind = r.read(), r.status, r.headers["Content-Type"]
    except urllib.error.HTTPError as err:
        raw, status, kind = err.read(), err.code, err.headers["Content-Type"]
    return status, json.loads(raw) if kind == "application/json" else raw


def _post(base: str, folder: Path, participant: str, item: str, answer: str, **extra) -> tuple[int, dict]:
    key = read_site_data(folder / "site")["study"]
    body = {"study": key, "participant": participant, "item": item, "answer": answer,
            "response_ms": 800, "shown_ms": None, "answered_at": "2026-12-01T00:00:00.000Z", **extra}  # fmt: skip
    return _call(base + "api/answers", body)


def test_the_site_is_served_and_nothing_else(served, study: Path) -> None:
    base, _ = served
    status, page = _call(base)
    assert status == 200 and page == (study / "site" / "index.html").read_bytes()
    assert _call(base + "images/q01_A.png")[1] == (study / "site" / "images" / "q01_A.png").read_bytes()
    assert _call(base + "api/study")[1]["key_sha256"] == read_site_data(study / "site")["study"]["key_sha256"]
    for path in ("../key.json", "%2e%2e/key.json", "images/", "nope.html", "study-data.js/../../key.json"):
        assert _call(base + path)[0] == 404, path


def test_every_answer_is_stored_once_the_first_stands(served, study: Path) -> None:
    base, db = served
    assert _post(base, study, "P1", "q01", "A") == (200, {"stored": True})
    status, body = _post(base, study, "P1", "q01", "B")
    assert status == 409 and body["existing"] == {"item": "q01", "answer": "A"}
    assert _post(base, study, "P1", "b1_01", "generated", shown_ms=1001.5)[0] == 200
    status, body = _call(base + "api/answers?participant=P1")
    assert [(a["item"], a["answer"]) for a in body["answers"]] == [("q01", "A"), ("b1_01", "generated")]
    with sqlite3.connect(db) as con:
        rows = con.execute(
            "SELECT participant, item, answer, response_ms, shown_ms, received_at FROM answers"
        ).fetchall()
    assert [r[:5] for r in rows] == [
        ("P1", "q01", "A", 800.0, None),
        ("P1", "b1_01", "generated", 800.0, 1001.5),
    ]
    assert all(r[5].startswith("20") for r in rows)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"item": "q99"}, "not in this study"),
        ({"answer": "Z"}, "not a valid answer"),
        ({"participant": "../x"}, "invalid participant"),
        ({"study": {"key_sha256": "0" * 64}}, "another study"),
        ({"response_ms": "fast"}, "response_ms"),
    ],
)
def test_invalid_answers_are_refused(served, study: Path, change: dict, message: str) -> None:
    base, db = served
    fields = {"item": "q01", "answer": "A", "participant": "P1"} | change
    status, body = _post(
        base, study, fields.pop("participant"), fields.pop("item"), fields.pop("answer"), **fields
    )
    assert status == 400 and message in body["error"]
    assert _call(base + "api/answers", b"x" * 20000)[0] == 413


def test_many_participants_at_once(served, study: Path) -> None:
    base, db = served
    key = load_key(study)
    people = [f"P{i}" for i in range(8)]

    def take(participant: str) -> list[int]:  # the same answers, even the same times: distinct people
        return [_post(base, study, participant, k, truthful(v))[0] for k, v in key["items"].items()]

    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(take, people))
    assert all(s == 200 for row in statuses for s in row)
    scores = score_study(key, db=db)
    assert [p["participant"] for p in scores["participants"]] == sorted(people)
    assert (
        scores["runs"]["beta"]["user_jab"]["value"] == 1.0 and scores["runs"]["beta"]["user_jab"]["n"] == 32
    )
    assert all(
        run["user_g2r"]["count"] == 0
        and run["user_r2g"] == {"value": 0.0, "count": 0, "n": 16, "ci95": run["user_r2g"]["ci95"]}
        for run in scores["runs"].values()
    )


def test_a_site_holding_its_key_is_not_served(study: Path, tmp_path: Path) -> None:
    import shutil

    shutil.copytree(study / "site", tmp_path / "site")
    shutil.copy(study / "key.json", tmp_path / "site" / "key.json")
    with pytest.raises(ConfigError, match="the key must not be in the served folder"):
        StudyServer(tmp_path / "site", tmp_path / "db.sqlite", port=0)


def test_a_database_belongs_to_one_study(served, study: Path, tiny_root: Path, tmp_path: Path) -> None:
    base, db = served
    other = tmp_path / "other"
    assert make(tiny_root, study.parent / "generated", other, "--seed", "2") == 0
    with pytest.raises(ConfigError, match="holds the answers of another study"):
        StudyServer(other / "site", db, port=0)
    from bench.errors import DataError

    with pytest.raises(DataError, match="answers of another study"):
        score_study(load_key(other), db=db)


def test_the_serve_command_binds_localhost_and_stops_cleanly(study: Path, tmp_path: Path) -> None:
    import signal
    import subprocess
    import sys

    db = tmp_path / "cli.sqlite"
    cmd = [sys.executable, "-m", "bench.cli.main", "user-study", "serve", "--study", str(study), "--db", str(db),
           "--port", "0"]  # fmt: skip
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert "serving study" in line and "http://localhost:" in line, line + proc.stderr.read()
        base = line.split(" at ")[1].split()[0]
        assert _post(base, study, "P1", "q01", "B")[0] == 200
    finally:
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0 and "every answer given is in the database" in out, err
    assert score_study(load_key(study), db=db)["participants"][0]["answered"] == 1
