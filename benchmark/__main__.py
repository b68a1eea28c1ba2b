import gc
import sys

if __name__ == "__main__":  # worker processes import this module too (see benchmark.worker_pool)
    try:
        from .cli import main

        code = main()
    except KeyboardInterrupt:  # Ctrl-C outside a run's own handling (e.g. while importing):
        print("\ninterrupted", file=sys.stderr)  # one line, no traceback; 130 as for SIGINT
        raise SystemExit(130) from None
    # Python's exit collects every object the libraries left (scikit-learn, pandas,
    # matplotlib...): 0.25 s after the last line is printed. Frozen objects are skipped by that
    # collection; exit handlers and file closing still run.
    gc.freeze()
    raise SystemExit(code)
