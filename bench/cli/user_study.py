"""`pgpis user-study make|score`: blinded user-study sheets, and Jab / G2R / R2G from the answers."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli._args import add_mlflow_arguments

MAKE_TEXT = """\
make   writes a study folder: index.html + images/ + answers.csv for the participants, and key.json
       (which image is which; keep it from them). Part 1 (--questions): a source person and a target
       pose, every run's image under a shuffled letter; "which is best?" gives Jab. Part 2
       (--real-fake N): one block per run, N of its generated images and N real photos shuffled;
       "real or generated?" gives G2R and R2G. Every image is re-encoded as PNG at one size so a real
       JPEG cannot be told by its file. Seeded: the same inputs give the same study."""

SCORE_TEXT = """\
score  reads key.json and the participants' filled answers.csv files and writes Jab, G2R, R2G per run
       with counts and Wilson 95% intervals (JSON, and Markdown with --md). Every answer counts;
       blank items are counted as blank; a sheet with an unknown item or an invalid answer is refused
       with its file and line."""

DESCRIPTION = (
    "The field's user study (PATN, PISE, CASD, CFLD) as declared, repeatable sheets.\n\n"
    + MAKE_TEXT
    + "\n"
    + SCORE_TEXT
)

EPILOG = """\
examples:
  pgpis user-study make --dataset datasets/synthetic --generated reports/generated --out reports/user_study
  # send index.html, images/ and answers.csv to each participant; collect their answers.csv files
  pgpis user-study score --study reports/user_study --answers answers/*.csv \\
      --out reports/user_study_scores.json --md reports/user_study_scores.md
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.cli.figures import add_run_arguments

    p = sub.add_parser(
        "user-study",
        help="make blinded user-study sheets; score the answers (Jab, G2R, R2G)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = actions.add_parser(
        "make",
        help="write the study folder (sheets for participants + key.json)",
        description=MAKE_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(make)
    make.add_argument(
        "--out", required=True, type=Path, help="study folder to create, e.g. reports/user_study"
    )
    make.add_argument(
        "--questions",
        type=int,
        default=20,
        help="part 1 questions, 0 to leave part 1 out (default: %(default)s)",
    )
    make.add_argument(
        "--real-fake",
        type=int,
        default=20,
        help="part 2: generated images per run, and as many real photos, per block; 0 to leave it out "
        "(default: %(default)s)",
    )
    make.add_argument("--overwrite", action="store_true", help="replace an existing study folder")
    make.set_defaults(func=run_make)
    score = actions.add_parser(
        "score",
        help="Jab, G2R and R2G per run from filled answer sheets",
        description=SCORE_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument("--study", required=True, type=Path, help="the study folder (or its key.json)")
    score.add_argument(
        "--answers",
        nargs="+",
        required=True,
        type=Path,
        metavar="CSV",
        help="filled answers.csv files, one per participant",
    )
    score.add_argument("--out", required=True, type=Path, help="JSON file for the scores")
    score.add_argument("--md", type=Path, help="also write the scores as a Markdown table here")
    add_mlflow_arguments(score, "the scores (one MLflow run per study run)")
    score.set_defaults(func=run_score)
    return p


def run_make(args: argparse.Namespace) -> int:
    from bench.data.deepfashion import validate_dataset  # the same dataset rules as generate

    validate_dataset(args.dataset, args.split)
    from bench.data.deepfashion import DeepFashionDataset
    from bench.report.generated import complete_pairs, expand_generated
    from bench.report.user_study import StudySettings, make_study

    dataset = DeepFashionDataset(args.dataset, args.split)
    runs = expand_generated(args.generated, args.labels)
    usable, left_out = complete_pairs(dataset, runs, args.allow_missing)
    settings = StudySettings(args.questions, args.real_fake, args.seed, tuple(args.size))
    key = make_study(
        dataset, runs, usable, args.out, settings, left_out, args.overwrite, not args.no_progress
    )
    parts = {p: sum(v["part"] == p for v in key["items"].values()) for p in ("best", "real_fake")}
    print(
        f"{args.out}: {parts['best']} part-1 question(s), {parts['real_fake']} part-2 image(s) in {len(runs)} "
        f"block(s); give participants index.html, images/ and answers.csv, keep key.json"
    )
    return 0


def run_score(args: argparse.Namespace) -> int:
    from bench.io import write_json_atomic, write_text_atomic
    from bench.report.user_study import load_key, score_study, scores_markdown

    key = load_key(args.study)
    scores = score_study(key, args.answers)
    markdown = scores_markdown(scores)
    write_json_atomic(args.out, scores)
    if args.md:
        write_text_atomic(args.md, markdown)
    _log_to_mlflow(args, scores)
    print(markdown, end="")
    return 0


def _log_to_mlflow(args: argparse.Namespace, scores: dict) -> None:
    from bench.tracking import log_metrics, mlflow_run, tracking_uri

    uri = tracking_uri(args.mlflow)
    if not uri:
        return
    import mlflow

    for label, run in scores["runs"].items():
        params = {
            "study": str(args.study),
            "settings": scores["settings"],
            "sheets": len(scores["participants"]),
        }
        with mlflow_run(uri, args.experiment, f"user-study/{label}", params):
            log_metrics({k: v["value"] for k, v in run.items() if v["value"] is not None})
            log_metrics({f"{k}.n": v["n"] for k, v in run.items()})
            mlflow.log_artifact(str(args.out))
    print(f"logged {len(scores['runs'])} run(s) to MLflow at {uri} (experiment {args.experiment!r})")
