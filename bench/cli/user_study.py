"""`pgpis user-study make|serve|score`: a blinded study participants take in the browser, collected
from downloaded answers files or a served SQLite database, scored as Jab / G2R / R2G per run."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli._args import add_mlflow_arguments, at_least

MAKE_TEXT = """\
make   writes <out>/site/ (index.html, study.js, study.css, study-data.js, images/): the study that
       participants take in any browser, from file:// or any static host, and <out>/key.json (which
       image is which; keep it from them; --key puts it elsewhere). Part 1 (--questions): a source
       person, a target pose and every run's image under a shuffled letter; "which is best?" gives
       Jab. Part 2 (--real-fake N): one block per run, N of its generated images and N real photos
       of other pairs, each shown alone for --exposure-ms then hidden; "real or generated?" gives
       G2R and R2G. No real photo of part 2 is (by content) a picture some run "generated". Every
       image is re-encoded as PNG at one size. Seeded: the same inputs give the same study."""

SERVE_TEXT = """\
serve  serves <out>/site/ over HTTP and stores every answer in a SQLite file the moment it is given
       (participant, item, answer, response time, display time, both clocks); a reload resumes,
       an item cannot be answered twice, many participants at once. Binds 127.0.0.1 unless --host."""

SCORE_TEXT = """\
score  reads key.json and the answers (files downloaded at the end of the study, CSV sheets
       item,answer[,response_ms][,participant], and/or --db) and writes Jab, G2R, R2G per run with
       counts and Wilson 95% intervals (JSON, and Markdown with --md). Answers of another study are
       refused; a repeated participant or sheet is counted once and named; the exclusions declared
       at `make` (--max-attention-failures, --min-response-ms) are applied and counted."""

DESCRIPTION = (
    "The field's user study (PATN, PISE, CASD, CFLD) as a declared, repeatable browser study.\n\n"
    + "\n".join((MAKE_TEXT, SERVE_TEXT, SCORE_TEXT))
)

EPILOG = """\
examples:
  pgpis user-study make --dataset datasets/synthetic --generated reports/generated --out reports/user_study
  # either hand out reports/user_study/site/ (zip it, or put it on any web host) and collect the
  # answers-*.json files participants download at the end, or collect into a database:
  pgpis user-study serve --study reports/user_study/site --db answers.sqlite --port 8000
  pgpis user-study score --study reports/user_study/key.json --db answers.sqlite --answers answers/*.json \\
      --out reports/user_study_scores.json --md reports/user_study_scores.md
"""


def add_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:
    from bench.cli.figures import add_run_arguments
    from bench.report.user_study import StudySettings

    p = sub.add_parser(
        "user-study",
        help="make a browser user study; serve it; score the answers (Jab, G2R, R2G)",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    make = actions.add_parser(
        "make",
        help="write the study site (for participants) and its key (kept apart)",
        description=MAKE_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_run_arguments(make)
    make.add_argument(
        "--out", required=True, type=Path, help="study folder to create, e.g. reports/user_study"
    )
    make.add_argument("--key", type=Path, help="write the key here instead of <out>/key.json")
    for option in StudySettings.options():  # declared once, with their help, in StudySettings
        minimum = option.metadata["minimum"]
        make.add_argument(
            "--" + option.name.replace("_", "-"),
            type=type(option.default) if minimum is None else at_least(minimum),
            default=option.default,
            help=option.metadata["help"],
        )
    make.add_argument("--overwrite", action="store_true", help="replace an existing study folder")
    make.set_defaults(func=run_make)

    serve = actions.add_parser(
        "serve",
        help="serve the study and store every answer in SQLite",
        description=SERVE_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    serve.add_argument("--study", required=True, type=Path, help="the site folder (<out>/site) of `make`")
    serve.add_argument(
        "--db", required=True, type=Path, help="SQLite file for the answers (created if absent)"
    )
    serve.add_argument(
        "--host", default="127.0.0.1",
        help="address to listen on (default: %(default)s, this machine only; 0.0.0.0 for the network)",
    )  # fmt: skip
    serve.add_argument(
        "--port", type=int, default=8000, help="port; 0 picks a free one (default: %(default)s)"
    )
    serve.set_defaults(func=run_serve)

    score = actions.add_parser(
        "score",
        help="Jab, G2R and R2G per run from the answers",
        description=SCORE_TEXT,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    score.add_argument(
        "--study", required=True, type=Path, help="the study's key.json (or the folder holding it)"
    )
    score.add_argument(
        "--answers", nargs="+", default=[], type=Path, metavar="FILE",
        help="answers files (answers-*.json downloaded by participants) and/or CSV sheets",
    )  # fmt: skip
    score.add_argument("--db", type=Path, help="the SQLite file of `pgpis user-study serve`")
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
    from bench.report.user_study_site import make_study

    dataset = DeepFashionDataset(args.dataset, args.split)
    runs = expand_generated(args.generated, args.labels)
    usable, left_out = complete_pairs(dataset, runs, args.allow_missing)
    from bench.report.user_study import StudySettings

    options = {o.name: getattr(args, o.name) for o in StudySettings.options()}
    settings = StudySettings(seed=args.seed, size=tuple(args.size), **options)
    key = make_study(
        dataset, runs, usable, args.out, settings, left_out, args.overwrite, not args.no_progress, args.key
    )
    parts = {
        p: sum(v["part"] == p for v in key["items"].values()) for p in ("best", "attention", "real_fake")
    }
    copies = key["fairness"]["real_photos_rejected_as_copies"]
    print(
        f"{args.out}/site: study {key['study_id']}: {parts['best']} part-1 question(s) + {parts['attention']} "
        f"attention check(s), {parts['real_fake']} part-2 image(s) in {len(runs) if parts['real_fake'] else 0} "
        f"block(s), {args.exposure_ms} ms each"
        + (f"; {copies} real photo(s) left out because a run reproduces them" if copies else "")
    )
    print(
        f"give participants {args.out}/site/ (open index.html, or host it, or `pgpis user-study serve`); "
        f"keep {args.key or args.out / 'key.json'} to score"
    )
    return 0


def run_serve(args: argparse.Namespace) -> int:
    from bench.report.user_study_server import StudyServer

    server = StudyServer(args.study, args.db, args.host, args.port)
    host, port = server.server_address[:2]
    shown = "localhost" if host in ("127.0.0.1", "::1") else host
    print(
        f"serving study {server.study['id']} at http://{shown}:{port}/ "
        f"(participants: http://{shown}:{port}/?participant=ID); answers go to {args.db}; Ctrl-C stops",
        flush=True,
    )
    import signal

    # Ctrl-C (and a service manager's SIGTERM) stop the server cleanly, even when this process was
    # started in the background, where the shell sets SIGINT to "ignore" and Python then keeps it so.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        print("stopped; every answer given is in the database")
    finally:
        server.server_close()
    return 0


def run_score(args: argparse.Namespace) -> int:
    from bench.io import write_json_atomic, write_text_atomic
    from bench.report.user_study import load_key
    from bench.report.user_study_score import score_study, scores_markdown

    key = load_key(args.study)
    scores = score_study(key, args.answers, args.db)
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

    counted = sum(1 for p in scores["participants"] if not p["excluded"])
    for label, run in scores["runs"].items():
        params = {
            "study": scores["study"]["id"],
            "study_key_sha256": scores["study"]["key_sha256"],
            "settings": scores["settings"],
            "participants": counted,
        }
        with mlflow_run(uri, args.experiment, f"user-study/{label}", params):
            log_metrics({k: v["value"] for k, v in run.items() if v["value"] is not None})
            log_metrics({f"{k}.n": v["n"] for k, v in run.items()})
            mlflow.log_artifact(str(args.out))
    print(f"logged {len(scores['runs'])} run(s) to MLflow at {uri} (experiment {args.experiment!r})")
