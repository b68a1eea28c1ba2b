"""Benchmark image classifiers: classical models on handcrafted features vs CNNs.

`from benchmark import run_benchmark` is the Python API (benchmark.api); `python -m benchmark`
the command line (benchmark.cli).
"""

__version__ = "0.1.0"
__all__ = ["BenchmarkResults", "run_benchmark", "__version__"]


def __getattr__(name):
    # imported on first use: `python -m benchmark` and the workers import this package, and
    # the API's imports (scikit-learn, pandas) are not theirs to pay for at start-up
    if name in ("run_benchmark", "BenchmarkResults"):
        from benchmark import api

        return getattr(api, name)
    raise AttributeError(f"module 'benchmark' has no attribute {name!r}")
