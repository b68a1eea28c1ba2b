import gc
import signal
import sys

if __name__ == "__main__":  # worker processes import this module too (see benchmark.execution.worker_pool)
    from benchmark.errors import exit_after_interrupt, exit_code, raise_interrupted, raise_terminated, received

    signal.signal(signal.SIGTERM, raise_terminated)  # from the start: SIGTERM while importing too
    if hasattr(signal, "SIGXFSZ"):  # a file over `ulimit -f`: an OSError (EFBIG) to report in one
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # line, not a silent death (and its workers too)
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:  # (not when started ignoring it)
        signal.signal(signal.SIGINT, raise_interrupted)  # Ctrl-C as usual, and remembered
    try:
        from benchmark.cli import main

        code = main()
    except BrokenPipeError:  # `python -m benchmark report | head`: the reader left; the files are written
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no error at exit's flush
        raise SystemExit(128 + signal.SIGPIPE)
    except BaseException as exc:  # Ctrl-C / SIGTERM outside a run's own handling (imports)
        if isinstance(exc, SystemExit) or not received:
            raise
        # an interrupt inside a library's import can come out as another exception
        # (ModuleNotFoundError, a TypeError from C code): what ended it was the signal
        print("\ninterrupted", file=sys.stderr)  # one line, no traceback; 130 or 143
        exit_after_interrupt(exit_code(received[-1]))
    if received:
        if code == 0:  # swallowed inside a library: the run went on to its end
            print("\ninterrupted: the interrupt reached a library that ignored it; the run went on "
                  "and finished (every cell is in its report)", file=sys.stderr)
        exit_after_interrupt(exit_code(received[-1]))
    # Python's exit collects every object the libraries left (scikit-learn, pandas,
    # matplotlib...): 0.25 s after the last line is printed. Frozen objects are skipped by that
    # collection; exit handlers and file closing still run.
    gc.freeze()
    raise SystemExit(code)
