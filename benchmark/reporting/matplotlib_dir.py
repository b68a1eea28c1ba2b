"""A writable folder for matplotlib's config and font cache, chosen before matplotlib loads.

When MPLCONFIGDIR (or, without it, ~/.config/matplotlib and ~/.cache/matplotlib) cannot be
written - a read-only home, a container's nobody user - matplotlib falls back to a temporary
folder and says so on stderr in every process that imports it ("Matplotlib created a temporary
cache directory..."), the run's workers included, so a --quiet run's stderr was not empty and
every worker rebuilt the font cache. `use_writable_config_dir` points MPLCONFIGDIR at the
benchmark's cache folder instead (a temporary folder when that cannot be written either)
before anything imports matplotlib; workers inherit the variable.
"""

import atexit
import os
import shutil
import sys
import tempfile
from pathlib import Path


def use_writable_config_dir():
    """Set MPLCONFIGDIR to a writable folder when matplotlib's own choice is not writable;
    the folder chosen, or None when nothing needed changing (or matplotlib is loaded already)."""
    if "matplotlib" in sys.modules:
        return None
    configured = os.environ.get("MPLCONFIGDIR")
    if configured:
        wanted = [Path(configured)]
    else:
        home = Path(os.path.expanduser("~"))
        wanted = [Path(os.environ.get("XDG_CONFIG_HOME") or home / ".config") / "matplotlib",
                  Path(os.environ.get("XDG_CACHE_HOME") or home / ".cache") / "matplotlib"]
    if all(_writable(folder) for folder in wanted):
        return None
    from features.cache import default_cache_dir

    folder = default_cache_dir() / "matplotlib"
    if not _writable(folder):
        folder = Path(tempfile.mkdtemp(prefix="benchmark-matplotlib-"))
        atexit.register(shutil.rmtree, folder, ignore_errors=True)
    os.environ["MPLCONFIGDIR"] = str(folder)
    return folder


def _writable(folder):
    """Whether `folder` exists or can be made, and can be written (matplotlib's own test)."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:
        return False
    return folder.is_dir() and os.access(folder, os.W_OK)
