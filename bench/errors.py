"""User-facing errors.

A ``BenchError`` is a problem with the user's input or environment (a missing file, a bad CSV,
a missing weight). The CLI prints its message without a traceback and exits non-zero, so every
message must name the file involved and say what to do.
"""


class BenchError(Exception):
    """An error the user can fix; the message names the file and the remedy."""

    exit_code = 2


class DataError(BenchError):
    """A dataset file is missing, unreadable or malformed."""


class ConfigError(BenchError):
    """An option, config or output folder conflicts with what was asked."""


class MissingWeightError(BenchError):
    """A pretrained weight file is not available offline."""
