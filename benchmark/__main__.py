import gc

from .cli import main

if __name__ == "__main__":  # worker processes import this module too (see benchmark.worker_pool)
    code = main()
    # Python's exit collects every object the libraries left (scikit-learn, pandas,
    # matplotlib...): 0.25 s after the last line is printed. Frozen objects are skipped by that
    # collection; exit handlers and file closing still run.
    gc.freeze()
    raise SystemExit(code)
