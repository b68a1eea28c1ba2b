import gc
import signal
import sys

if __name__ == "__main__":  # worker processes import this module too (see benchmark.execution.worker_pool)
    from benchmark.errors import exit_code, raise_terminated

    signal.signal(signal.SIGTERM, raise_terminated)  # from the start: SIGTERM while importing too
    try:
        from benchmark.cli import main

        code = main()
    except KeyboardInterrupt as exc:  # Ctrl-C / SIGTERM outside a run's own handling (imports):
        print("\ninterrupted", file=sys.stderr)  # one line, no traceback; 130 or 143
        raise SystemExit(exit_code(exc)) from None
    # Python's exit collects every object the libraries left (scikit-learn, pandas,
    # matplotlib...): 0.25 s after the last line is printed. Frozen objects are skipped by that
    # collection; exit handlers and file closing still run.
    gc.freeze()
    raise SystemExit(code)
