"""Entry point of the ``pgpis`` command.

Each subcommand lives in its own module ``bench.cli.<module>`` exposing
``add_parser(subparsers) -> argparse.ArgumentParser`` whose parser sets ``func=run``.
Modules keep heavy imports (torch, diffusers) inside ``run`` so that ``pgpis --help`` is fast.
"""

from __future__ import annotations

import argparse
import contextlib
import errno
import importlib
import logging
import os
import sys

from bench import __version__
from bench.errors import BenchError

# (module, one-line help) in the order a user meets them in the pipeline.
SUBCOMMANDS: list[tuple[str, str]] = [
    ("synth", "write the embedded synthetic dataset in DeepFashion's on-disk format"),
    ("fetch", "get the public DeepFashion split files (and verify them); images from a local folder"),
    ("prepare", "build train_highres/ and test_highres/ from a DeepFashion img_highres folder or zip"),
    ("methods", "list the installed methods (entry-point group pgpis_bench.methods)"),
    ("train", "train a method with Accelerate"),
    ("generate", "generate one image per test pair with a method"),
    ("synthesize", "your own photo in one or more target poses (OpenPose, COCO or dataset poses)"),
    ("fetch_weights", "download the metric networks' weights into the standard caches"),
    ("refstats", "compute (or import) the FID reference statistics of a dataset under a protocol"),
    ("evaluate", "score a folder of generated images under a named protocol"),
    ("fid", "FID between two image folders (or a folder and cached statistics) under a protocol"),
    ("report", "combine metrics files into one table per protocol (Markdown, CSV, MLflow)"),
    ("figures", "draw the comparison grid (source | pose | truth | runs) and the metrics chart"),
    ("user_study", "make blinded user-study sheets; score the answers (Jab, G2R, R2G)"),
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pgpis",
        description=(
            "pgpis-bench: reproducible benchmarking of pose-guided person image synthesis. "
            "Every number is computed under a named protocol; see `pgpis evaluate --help`."
        ),
    )
    parser.add_argument("--version", action="version", version=f"pgpis-bench {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module(f"bench.cli.{module_name}")
        p = module.add_parser(sub)
        if p.description is None:
            p.description = help_text
    # argparse shows the help given to add_parser; make sure every command has one.
    for action in sub._choices_actions:
        if not action.help:
            action.help = dict((m.replace("_", "-"), h) for m, h in SUBCOMMANDS).get(action.dest, "")
    return parser


# What to do about an OS error, by errno; the message always names the path first.
_OS_ADVICE: dict[int, str] = {
    errno.ENOSPC: "the disk is full: free space or choose an output folder on another disk, then rerun",
    errno.EFBIG: "the file is larger than allowed (a file size limit, `ulimit -f`, or the file system's "
    "maximum): raise the limit or choose another disk, then rerun",
    errno.EDQUOT: "the disk quota is exhausted: free space or choose another disk, then rerun",
    errno.EACCES: "permission denied: make it readable/writable for you (chmod/chown) or choose another path",
    errno.EPERM: "operation not permitted: check its owner and permissions, or choose another path",
    errno.EROFS: "the file system is read-only: choose an output path on a writable disk",
    errno.ENOENT: "no such file or folder: check the path",
    errno.ENOTDIR: "a component of the path is not a folder: check the path",
    errno.EISDIR: "is a folder where a file was expected: check the path",
    errno.EMFILE: "too many open files: raise `ulimit -n` or use fewer --num-workers",
}
# A reader that closed our stdout (e.g. `| head -1`) is reported like every other OS error: one line
# on stderr, exit 2 (not the silent 141 of a SIGPIPE death), so a script can tell the output is cut.
EXIT_BROKEN_PIPE = 2


def os_error_message(err: OSError) -> str:
    """One line naming the path (when the OS gave one), what happened and what to do."""
    where = err.filename if err.filename is not None else None
    if err.filename2 is not None:
        where = f"{err.filename} -> {err.filename2}"
    advice = _OS_ADVICE.get(err.errno or -1, f"{err.strerror or err}: check the path and rerun")
    detail = f" ({err.strerror})" if err.strerror and err.errno in _OS_ADVICE else ""
    prefix = f"{where}: " if where is not None else ""
    return f"{prefix}{advice}{detail}. Finished outputs are kept; rerunning the command resumes"


def _silence_stdout() -> None:
    """After a broken pipe (`pgpis ... | head -1`) send what is left to /dev/null, so that Python's own
    flush at exit does not raise again (the recipe of the Python docs, signal module, SIGPIPE note)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main(argv: list[str] | None = None) -> int:
    command = "pgpis"
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        command = f"pgpis {args.command}" if getattr(args, "command", None) else "pgpis"
        logging.basicConfig(
            level=logging.DEBUG if args.verbose else logging.INFO,
            format="%(levelname)s %(name)s: %(message)s",
        )
        if not getattr(args, "func", None):
            parser.print_help()
            sys.stdout.flush()
            return 2
        result = args.func(args)
        sys.stdout.flush()  # inside the try: a reader that went away is handled here, not at exit
    except BenchError as err:
        print(f"{command}: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print(f"{command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader closed the pipe (e.g. `| head -1`): stdout goes to /dev/null so that Python's
        # exit flush cannot raise again, and one line says the output is incomplete.
        _silence_stdout()
        with contextlib.suppress(OSError):
            print(
                f"{command}: stdout was closed by its reader (broken pipe); the output is incomplete",
                file=sys.stderr,
            )
        return EXIT_BROKEN_PIPE
    except OSError as err:
        print(f"{command}: error: {os_error_message(err)}", file=sys.stderr)
        return 2
    except UnicodeError as err:
        print(
            f"{command}: error: text encoding problem ({err}); file names and text must be UTF-8, or set "
            "PYTHONIOENCODING=utf-8 (or a UTF-8 locale) when the terminal cannot show them",
            file=sys.stderr,
        )
        return 2
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
