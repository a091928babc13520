"""pgpis-bench: reproducible benchmarking for pose-guided person image synthesis."""

__version__ = "0.1.0"
