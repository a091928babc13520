"""`pgpis user-study score`: answers files, CSV sheets and the database, checked as data from outside;
duplicates counted once; declared exclusions; Jab, G2R, R2G with Wilson intervals; MLflow."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from _runs import fake_runs
from _study import answers_file, make, truthful

from bench.cli.main import main
from bench.errors import DataError
from bench.report.user_study import load_key
from bench.report.user_study_answers import read_csv_sheet
from bench.report.user_study_score import score_study, wilson


@pytest.fixture(scope="module")
def study(tiny_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One study for the module (read-only; its runs are in the sibling folder generated/)."""
    tmp = tmp_path_factory.mktemp("study")
    assert make(tiny_root, fake_runs(tiny_root, tmp / "generated"), tmp / "study") == 0
    return tmp / "study"


def _letter(spec: dict, label: str) -> str:
    return next(k for k, v in spec["options"].items() if v == label)


def _sheet(study: Path, path: Path, choose, header=("item", "answer"), encoding: str = "utf-8") -> Path:
    key = load_key(study)
    with open(path, "w", newline="", encoding=encoding) as f:
        csv.writer(f).writerows([list(header)] + [[k, choose(v)] for k, v in key["items"].items()])
    return path


def test_scores_count_every_answer(study: Path, tmp_path: Path) -> None:
    # P1 always picks beta and sees through part 2; P2 answers "real" to all and picks alpha; P3 is blank.
    p1 = answers_file(study, tmp_path / "p1.json", "P1")
    p2 = answers_file(
        study, tmp_path / "p2.json", "P2",
        lambda s: s.get("correct") or _letter(s, "alpha").lower() if s["part"] != "real_fake" else "R",
    )  # fmt: skip
    p3 = _sheet(study, tmp_path / "p3.csv", lambda s: "")
    scores = score_study(load_key(study), [p1, p2, p3])
    runs = scores["runs"]
    assert runs["beta"]["user_jab"] == {"value": 0.5, "count": 4, "n": 8, "ci95": wilson(4, 8)}
    assert runs["alpha"]["user_jab"]["value"] == 0.5 and runs["gamma"]["user_jab"]["count"] == 0
    for label in ("alpha", "beta", "gamma"):
        assert runs[label]["user_g2r"] | {"ci95": None} == {"value": 0.5, "count": 2, "n": 4, "ci95": None}
        assert runs[label]["user_r2g"]["count"] == 0 and runs[label]["user_r2g"]["n"] == 4
    assert [p["answered"] for p in scores["participants"]] == [16, 16, 0]  # checks are not scored answers
    assert [p["unanswered"] for p in scores["participants"]] == [0, 0, 16]
    assert scores["exposure"]["measured_median_ms"] == 1000.0 and scores["exposure"]["n"] == 24


def test_wilson_interval_matches_scipy() -> None:
    from scipy.stats import binomtest

    for k, n in [(0, 5), (3, 7), (12, 12), (40, 97), (1, 1000)]:
        ref = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
        assert wilson(k, n) == pytest.approx((ref.low, ref.high), abs=1e-9)
    assert wilson(0, 0) is None


def test_another_studys_answers_are_refused(study: Path, tmp_path: Path, tiny_root: Path) -> None:
    other = tmp_path / "other"
    assert make(tiny_root, study.parent / "generated", other, "--seed", "3") == 0
    theirs = answers_file(other, tmp_path / "theirs.json", "P1")
    with pytest.raises(DataError, match=r"theirs\.json: answers of another study"):
        score_study(load_key(study), [theirs])
    forged = answers_file(study, tmp_path / "forged.json", "P1", key_sha256="0" * 64)
    with pytest.raises(DataError, match="answers of another study"):
        score_study(load_key(study), [forged])


def test_a_repeated_participant_is_counted_once_and_named(study: Path, tmp_path: Path, capsys) -> None:
    p1 = answers_file(study, tmp_path / "p1.json", "P1")
    again = answers_file(study, tmp_path / "p1-again.json", "P1", lambda s: truthful(s, "alpha"))
    renamed = tmp_path / "renamed.json"
    renamed.write_text(p1.read_text().replace('"P1"', '"P9"'))  # a copy under another participant id
    scores = score_study(load_key(study), [p1, again, renamed])
    assert [p["participant"] for p in scores["participants"]] == ["P1"]
    assert scores["runs"]["beta"]["user_jab"]["count"] == 4  # P1's first file, not the second
    assert len(scores["duplicates"]) == 2 and "participant P1 again" in scores["duplicates"][0]
    assert "the same answers" in scores["duplicates"][1]
    out = tmp_path / "s.json"
    args = ["user-study", "score", "--study", str(study), "--answers", str(p1), str(p1), "--out", str(out)]
    assert main(args) == 0
    assert "counted once" in capsys.readouterr().out


def test_the_same_csv_sheet_given_twice_counts_once(study: Path, tmp_path: Path) -> None:
    """Issue 17: the same answers sheet given twice was counted as two participants."""
    sheet = _sheet(
        study,
        tmp_path / "p.csv",
        lambda s: truthful(s)[0].upper() if s["part"] == "real_fake" else truthful(s),
    )
    scores = score_study(load_key(study), [sheet, sheet])
    assert len(scores["participants"]) == 1 and len(scores["duplicates"]) == 1
    assert scores["runs"]["beta"]["user_jab"]["n"] == 4


def test_a_header_with_spaces_and_a_bom_is_read(study: Path, tmp_path: Path) -> None:
    """Issue 17: ' item , answer ' as header gave exit 0 with every answer silently dropped."""
    sheet = _sheet(study, tmp_path / "p.csv", truthful, header=(" item ", " answer "), encoding="utf-8-sig")
    scores = score_study(load_key(study), [sheet])
    assert scores["participants"][0]["answered"] == 16
    assert scores["runs"]["beta"]["user_jab"]["value"] == 1.0
    utf16 = _sheet(study, tmp_path / "p16.csv", truthful, header=("Item", "Answer"), encoding="utf-16")
    assert (
        read_csv_sheet(utf16, load_key(study)["items"]).answers
        == read_csv_sheet(sheet, load_key(study)["items"]).answers
    )


def test_a_latin1_sheet_is_refused_with_its_line(study: Path, tmp_path: Path, capsys) -> None:
    """Issue 17: a Latin-1 sheet gave a traceback."""
    path = tmp_path / "p.csv"
    path.write_bytes("item,answer,comment\nq01,A,\nq02,B,trés bien\n".encode("latin-1"))
    args = [
        "user-study",
        "score",
        "--study",
        str(study),
        "--answers",
        str(path),
        "--out",
        str(tmp_path / "s.json"),
    ]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "p.csv:3: not UTF-8 (byte 0xe9 at column 9" in err and "Traceback" not in err
    assert not (tmp_path / "s.json").exists()


@pytest.mark.parametrize(
    "rows, match",
    [
        ([["q01", "A"], ["q99", "A"]], r"p\.csv:3: item 'q99' is not in this study's key"),
        ([["q01", "Z"]], r"p\.csv:2: q01 answer 'Z' is not one of the options A, B, C"),
        ([["b1_01", "maybe"]], r"p\.csv:2: b1_01 answer 'MAYBE' must be R \(real\) or G"),
        ([["q01", "A"], ["q01", "B"]], r"p\.csv:3: item 'q01' is answered twice"),
    ],
)
def test_a_bad_sheet_is_refused_with_its_line(study: Path, tmp_path: Path, rows: list, match: str) -> None:
    path = tmp_path / "p.csv"
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["item", "answer"], *rows])
    with pytest.raises(DataError, match=match):
        read_csv_sheet(path, load_key(study)["items"])


def test_declared_exclusions_are_applied_and_counted(tiny_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "s"
    extra = ("--min-response-ms", "300", "--attention-checks", "2", "--max-attention-failures", "0")
    assert make(tiny_root, fake_runs(tiny_root, tmp_path / "generated"), out, *extra) == 0
    key = load_key(out)
    careless = answers_file(
        out, tmp_path / "c.json", "C", lambda s: s["part"] == "attention" and "ZZ" or truthful(s)
    )
    data = json.loads(careless.read_text())  # fails one check (picks a wrong option), else truthful
    check = next(k for k, v in key["items"].items() if v["part"] == "attention")
    wrong = next(k for k in key["items"][check]["options"] if k != key["items"][check]["correct"])
    for a in data["answers"]:
        if key["items"][a["item"]]["part"] == "attention":
            a["answer"] = wrong if a["item"] == check else key["items"][a["item"]]["correct"]
    careless.write_text(json.dumps(data))
    hasty = answers_file(out, tmp_path / "h.json", "H", response_ms=120.0)  # every answer too fast
    good = answers_file(out, tmp_path / "g.json", "G")
    scores = score_study(key, [careless, hasty, good])
    ex = scores["exclusions"]
    assert (ex["attention_participants"], ex["attention_answers"], ex["too_fast_answers"]) == (1, 16, 16)
    assert [p["excluded"] for p in scores["participants"]] == ["failed 1 of 2 attention checks", None, None]
    assert scores["runs"]["beta"]["user_jab"] == {"value": 1.0, "count": 4, "n": 4, "ci95": wilson(4, 4)}
    md = tmp_path / "s.md"
    args = ["user-study", "score", "--study", str(out / "key.json"), "--answers", str(careless), str(hasty),
            str(good), "--out", str(tmp_path / "s.json"), "--md", str(md)]  # fmt: skip
    assert main(args) == 0
    text = md.read_text()
    assert "1 participant(s), 16 answers" in text and "faster than 300 ms: 16 answers" in text


def test_score_cli_writes_json_and_markdown(study: Path, tmp_path: Path, capsys) -> None:
    sheet = answers_file(study, tmp_path / "p.json", "P1")
    out, md = tmp_path / "scores.json", tmp_path / "scores.md"
    args = [
        "user-study",
        "score",
        "--study",
        str(study),
        "--answers",
        str(sheet),
        "--out",
        str(out),
        "--md",
        str(md),
    ]
    assert main(args) == 0
    assert json.loads(out.read_text())["runs"].keys() == {"alpha", "beta", "gamma"}
    assert "| Run | Jab ↑ | G2R ↑ | R2G ↑ |" in md.read_text()
    (tmp_path / "bad.csv").write_text("question;reply\nq01;A\n")
    assert main([*args[:5], str(tmp_path / "bad.csv"), "--out", str(tmp_path / "x.json")]) == 2
    assert "needs the columns 'item' and 'answer'" in capsys.readouterr().err
    assert not (tmp_path / "x.json").exists()
    assert main(["user-study", "score", "--study", str(study), "--out", str(tmp_path / "y.json")]) == 2
    assert "no answers given" in capsys.readouterr().err


def test_score_logs_to_mlflow(study: Path, tmp_path: Path) -> None:
    import mlflow

    sheet = answers_file(study, tmp_path / "p.json", "P1")
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    args = [
        "user-study",
        "score",
        "--study",
        str(study),
        "--answers",
        str(sheet),
        "--out",
        str(tmp_path / "s.json"),
    ]
    assert main([*args, "--mlflow", uri]) == 0
    mlflow.set_tracking_uri(uri)
    found = mlflow.search_runs(experiment_names=["pgpis-bench"])
    assert sorted(found["tags.mlflow.runName"]) == ["user-study/alpha", "user-study/beta", "user-study/gamma"]
    assert set(found["metrics.user_g2r"]) == {0.0} and set(found["metrics.user_r2g"]) == {0.0}
    assert found["metrics.user_jab"].sum() == pytest.approx(1.0)
