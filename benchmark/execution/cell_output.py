"""What a cell's fit said: its warnings and printed output, captured off the terminal while
the cell runs (`capture_output`), and the `diagnostics` the cell stores (`diagnose_fit`)."""

import contextlib
import os
import sys
import tempfile
import warnings

MAX_PRINTED = 4000  # characters of a fit's printed output kept in its cell


@contextlib.contextmanager
def capture_output(caught, printed):
    """Keep a cell's warnings and output off the terminal: every warning raised is appended to
    `caught`, and what the fit prints goes to `printed` - Python's prints, and what native
    code (TensorFlow's C++ start-up log) writes to file descriptors 1 and 2, which are pointed
    at a temporary file for the cell's duration."""
    for stream in (sys.stdout, sys.stderr):
        _flush(stream)
    saved = []
    with tempfile.TemporaryFile() as sink, warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")  # every warning, whatever filters the process has
        try:
            for fd in (1, 2):
                try:
                    saved.append((fd, os.dup(fd)))
                    os.dup2(sink.fileno(), fd)
                except OSError:  # no such descriptor (e.g. a detached worker): nothing to hide
                    pass
            with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
                yield
        finally:
            caught.extend(record)
            for stream in (sys.stdout, sys.stderr):
                _flush(stream)
            for fd, copy in saved:
                os.dup2(copy, fd)
                os.close(copy)
            sink.seek(0)
            printed.write(sink.read().decode("utf-8", "replace"))


def _flush(stream):
    try:
        stream.flush()
    except (AttributeError, OSError, ValueError):
        pass


# Warnings about the libraries' own future, not about this fit: kept apart as "notices"
NOTICES = (DeprecationWarning, PendingDeprecationWarning, FutureWarning)


def summarise_warnings(caught):
    """["Category: message (xN)"] for each distinct warning, in the order first raised."""
    counts = {}
    for w in caught:
        text = f"{w.category.__name__}: {' '.join(str(w.message).split())}"
        counts[text] = counts.get(text, 0) + 1
    return [text if n == 1 else f"{text} (x{n})" for text, n in counts.items()]


def diagnose_fit(estimator, caught, printed):
    """The cell's `diagnostics`: its warnings, the libraries' deprecation notices (NOTICES),
    its printed output (last MAX_PRINTED characters) and, for estimators that check their own
    training (`convergence_`), that check. `undertrained` is set by a CNN's convergence check
    or by a ConvergenceWarning; `reasons` says why, one line each. (run_cell adds
    `unknown_predictions`, metrics.unknown_predictions, when the estimator predicted labels
    that are not among its training classes.) `augmentation` is what a classical estimator with
    a mirror switch did (`augmentation_`: "none", "mirror (train + test)", ...), else None."""
    texts = summarise_warnings([w for w in caught if not issubclass(w.category, NOTICES)])
    notices = summarise_warnings([w for w in caught if issubclass(w.category, NOTICES)])
    convergence = getattr(estimator, "convergence_", None)
    reasons = list((convergence or {}).get("reasons", []))
    unconverged = [t for t in texts if t.startswith("ConvergenceWarning")]
    if unconverged:
        reasons.append(f"did not converge: {unconverged[0]}")
    return {
        "warnings": texts,
        "notices": notices,
        "printed": printed[-MAX_PRINTED:] if printed else "",
        "training": convergence,
        "undertrained": bool(reasons),
        "reasons": reasons,
        # mirror augmentation of a classical estimator with a mirror switch (estimators.base)
        "augmentation": getattr(estimator, "augmentation_", None),
    }
