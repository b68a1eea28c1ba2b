"""Which images belong together, so that a split keeps each group on one side.

Many image folders hold several images derived from one source: frames of one video, several
shots of one object, style transfers of one content image. They share more than their class,
so a random stratified split that puts one on the training side and another on the test side
scores recognition of the source, not of the class. A grouping names each image's source and
the splits (benchmark.data.protocols) then keep every group whole: scikit-learn's
`StratifiedGroupKFold` for cross-validation; for holdout, training images whose group also has
test images are dropped.

The grouping is chosen with three plain strings, which `RunConfig` keeps as they are so that a
resumed run groups the images again in the same way:

* `groups`: a regular expression whose first capture group, searched (`re.search`) in each
  image's path relative to the dataset root (`train/airplane/airplane3-bicycle2.png`), names
  its group; e.g. `^[^/]+/([a-z]+\\d+)-` puts `airplane3-bicycle2.png` and
  `airplane3-clock1.png` together. Or the word `near-duplicates`: the groups are the clusters
  of near-duplicate images, which the caller computes and passes in.
* `groups_file`: a CSV file of `path,group` rows (header optional), paths relative to the
  dataset root.
* `groups_unmatched`: `own-group` makes each file the regex does not match, or the groups file
  does not list, a group of its own; without it such files stop the dataset, since a forgotten
  file is more often a wrong regex than an image without a source.

`check_grouping` validates the strings up front (UsageError, one line); `assign_groups` gives
one dataset's groups, or a DatasetError when that dataset cannot be grouped as asked.

A regex is checked with `re` (its error messages) and matched with the `regex` package, whose
`timeout` stops a pattern that backtracks catastrophically (`(a+)+$`, `(a|aa)+$`): `re` cannot
be interrupted once a search starts, and such a pattern would hang the run on a long file name.
A search longer than MATCH_SECONDS on one file name stops the dataset with the pattern named.
Grouping a folder that takes longer than PROGRESS_AFTER seconds shows a bar on a terminal.
"""

import csv
import posixpath
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import regex
from tqdm import tqdm

from benchmark.data.dataset import DatasetError
from benchmark.errors import UsageError

NEAR_DUPLICATES = "near-duplicates"
OWN_GROUP = "own-group"
UNMATCHED_CHOICES = (OWN_GROUP,)
EXAMPLE_REGEX = r"^[^/]+/([a-z]+\d+)-"
SHOWN = 5  # files named in an error; the rest are counted
# An unmatched file's own group is its path behind a NUL: no path and no regex capture holds
# one, so it never merges with a named group
OWN_PREFIX = "\0"
# seconds one file name may take to search: a sane pattern takes microseconds, so the limit
# only catches catastrophic backtracking, whose time doubles with each character
MATCH_SECONDS = 1.0
PROGRESS_AFTER = 2.0  # seconds of grouping before a progress bar shows (terminals only)


@dataclass(frozen=True)
class Grouping:
    """A checked grouping request: `groups` (a regex or NEAR_DUPLICATES) or `groups_file`, and
    `unmatched` (OWN_GROUP or None)."""

    groups: str = None
    groups_file: str = None
    unmatched: str = None

    @property
    def near_duplicates(self):
        return self.groups == NEAR_DUPLICATES

    @property
    def by_files(self):
        """Whether the groups come from the images' file names (a regex or a groups file)."""
        return not self.near_duplicates

    def describe(self):
        """What the images are grouped by, for the report: "regex '...'", "groups file PATH"
        or "near-duplicate clusters"."""
        if self.near_duplicates:
            return "near-duplicate clusters"
        if self.groups is not None:
            return f"regex '{self.groups}'"
        return f"groups file {self.groups_file}"


def check_grouping(groups=None, groups_file=None, unmatched=None, datasets=()):
    """The Grouping that --groups, --groups-file and --groups-unmatched ask for (None: none),
    every part checked: UsageError (one line, saying how to fix it) for a regex that does not
    compile or has no capture group, both --groups and --groups-file, --groups-unmatched
    without a grouping or with an unknown value, and a groups file that cannot be read or has
    a malformed row. Datasets of `datasets` that are arrays without files (the embedded ones)
    cannot be grouped by file name: asking that is a UsageError too."""
    from benchmark.data.embedded import EMBEDDED

    for option, value in (("--groups", groups), ("--groups-unmatched", unmatched)):
        if value is not None and not isinstance(value, str):
            raise UsageError(f"{option} must be text; got {value!r}")
    if groups is not None and groups_file is not None:
        raise UsageError("--groups and --groups-file are two ways to give the groups; use one of them")
    if unmatched is not None and unmatched not in UNMATCHED_CHOICES:
        raise UsageError(f"--groups-unmatched must be {' or '.join(UNMATCHED_CHOICES)}; got {unmatched!r}")
    if groups is None and groups_file is None:
        if unmatched is not None:
            raise UsageError("--groups-unmatched says what to do with files a grouping leaves out; "
                             "give the grouping with --groups REGEX or --groups-file FILE")
        return None
    if groups == NEAR_DUPLICATES:
        if unmatched is not None:
            raise UsageError(f"--groups-unmatched applies to --groups REGEX and --groups-file; "
                             f"--groups {NEAR_DUPLICATES} gives every image a group: drop it")
    elif groups is not None:
        compile_regex(groups)
    else:
        read_groups_file(groups_file)
    grouping = Grouping(groups, None if groups_file is None else str(groups_file), unmatched)
    arrays = [name for name in datasets if name in EMBEDDED]
    if grouping.by_files and arrays:
        option = "--groups REGEX" if groups is not None else "--groups-file"
        raise UsageError(f"{option} groups images by file name, but {', '.join(arrays)} "
                         f"{'has' if len(arrays) == 1 else 'have'} no image files (arrays); "
                         f"use --groups {NEAR_DUPLICATES} or run {'it' if len(arrays) == 1 else 'them'} separately")
    return grouping


def compile_regex(pattern):
    """`pattern` compiled; UsageError when it is not a regex with a capture group."""
    try:
        regex = re.compile(pattern)
    except re.error as exc:
        raise UsageError(f"--groups '{pattern}' is not a valid regular expression ({exc})") from None
    if regex.groups < 1:
        raise UsageError(f"--groups '{pattern}' has no capture group; put the part of the path that "
                         f"names the group in parentheses, e.g. '{EXAMPLE_REGEX}', or use --groups "
                         f"{NEAR_DUPLICATES}")
    return regex


def read_groups_file(path):
    """{path: group} of a groups file: CSV rows `path,group` (a first row `path,group` is a
    header), paths made relative and posix (`./` and backslashes removed); blank lines are
    skipped. UsageError when it cannot be read or a row is malformed (naming its line)."""
    shown = str(path)
    try:
        text = Path(path).expanduser().read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise UsageError(f"groups file {shown!r} does not exist") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"cannot read groups file {shown!r} ({exc})") from None
    groups, lines = {}, {}
    try:
        rows = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise UsageError(f"groups file {shown!r} is not valid CSV ({exc})") from None
    for number, row in enumerate(rows, start=1):
        cells = [cell.strip() for cell in row]
        if not any(cells):
            continue
        if number == 1 and [c.lower() for c in cells] == ["path", "group"]:
            continue
        if len(cells) != 2 or not all(cells):
            raise UsageError(f"groups file {shown!r} line {number}: expected 'path,group', got {','.join(row)!r}")
        file, group = normalise_path(cells[0]), cells[1]
        if file in groups and groups[file] != group:
            raise UsageError(f"groups file {shown!r} line {number}: {file} is already in group "
                             f"{groups[file]!r} (line {lines[file]}); give each file one group")
        groups[file], lines[file] = group, number
    return groups


def normalise_path(path):
    """A groups file's path as Dataset.paths writes it: posix, relative, without `./`."""
    path = posixpath.normpath(path.replace("\\", "/"))
    while path.startswith("./"):
        path = path[2:]
    return path


def assign_groups(dataset, grouping, clusters=None):
    """(groups, facts): each image's group (an array of str in the order of `dataset`'s
    images) and a JSON-ready description of the grouping for the report.

    `grouping`: a Grouping (see check_grouping). For near-duplicates, `clusters` is the cluster
    id of each image (a singleton has an id of its own), computed by the caller; ValueError if
    it is missing or of the wrong length. DatasetError when this dataset cannot be grouped as
    asked: it has no image files, files the regex does not match or the groups file leaves out
    (unless `unmatched` is own-group), or a groups file naming files the dataset does not have.
    """
    if grouping.near_duplicates:
        if clusters is None or len(clusters) != len(dataset.labels):
            raise ValueError(f"near-duplicate grouping needs one cluster id per image "
                             f"({len(dataset.labels)}); got {None if clusters is None else len(clusters)}")
        groups = np.array([f"cluster {int(c)}" for c in clusters], dtype=str)
        return groups, {"by": grouping.describe()}
    if dataset.paths is None:
        option = f"--groups {'REGEX' if grouping.groups is not None else 'FILE'}"
        raise DatasetError(f"dataset {dataset.name!r} has no image files (its images are arrays); "
                           f"{option} needs files; use --groups {NEAR_DUPLICATES}")
    paths = [str(p) for p in dataset.paths]
    if grouping.groups is not None:
        named, unmatched = _by_regex(dataset.name, paths, grouping.groups)
        what = f"--groups '{grouping.groups}' finds no group in"
    else:
        named, unmatched, listed_skipped = _by_file(dataset, paths, grouping.groups_file)
        what = f"groups file {grouping.groups_file} does not list"
    if unmatched and grouping.unmatched != OWN_GROUP:
        fix = "fix the regex" if grouping.groups is not None else "add them to the file"
        raise DatasetError(f"dataset {dataset.name!r}: {what} {_some(unmatched)} of its "
                           f"{len(paths)} files; {fix} or pass --groups-unmatched {OWN_GROUP}")
    groups = np.array([OWN_PREFIX + p if g is None else g for p, g in zip(paths, named)], dtype=str)
    facts = {"by": grouping.describe(), "unmatched_own_group": len(unmatched)}
    if grouping.groups is None and listed_skipped:
        facts["listed_skipped"] = [f"{p} ({r})" for p, r in listed_skipped]
    return groups, facts


def _by_regex(name, paths, pattern):
    """([group or None per path], [unmatched paths]); an empty capture counts as unmatched.
    DatasetError, naming the pattern and the file, when one search runs over MATCH_SECONDS."""
    compile_regex(pattern)  # a UsageError with re's message if it does not compile
    try:
        searcher = regex.compile(pattern)
    except regex.error as exc:  # valid for re, not for the regex package: not seen in practice
        raise DatasetError(f"dataset {name!r}: --groups '{pattern}' cannot be matched with a time "
                           f"limit ({exc}); simplify the pattern") from None
    named = []
    bar = tqdm(paths, desc=f"grouping {name}", unit="file", delay=PROGRESS_AFTER, disable=None,
               leave=False, file=sys.stderr, dynamic_ncols=True)
    with bar:
        for path in bar:
            try:
                match = searcher.search(path, timeout=MATCH_SECONDS)
            except TimeoutError:
                raise DatasetError(
                    f"dataset {name!r}: --groups '{pattern}' took over {MATCH_SECONDS:g} s on one file "
                    f"name ({path}); it backtracks catastrophically, most often a repeat inside a repeat "
                    f"such as (a+)+; simplify the pattern") from None
            named.append((match.group(1) or None) if match else None)
    return named, [p for p, g in zip(paths, named) if g is None]


def _by_file(dataset, paths, groups_file):
    """([group or None per path], [unlisted paths], [(path, reason)] of listed files the loader
    skipped as unreadable). Listed files the loader skipped are not an error: they are not in
    the dataset for a reason the report gives. DatasetError for listed files that do not exist."""
    name = dataset.name
    try:
        listed = read_groups_file(groups_file)
    except UsageError as exc:  # checked up front, but read again now: moved or edited since
        raise DatasetError(f"dataset {name!r}: {exc}") from None
    skipped = _skipped_files(dataset)
    listed_skipped = [(p, skipped[p]) for p in sorted(set(listed) - set(paths)) if p in skipped]
    unknown = sorted(set(listed) - set(paths) - set(skipped))
    if unknown:
        also = (f" ({len(listed_skipped)} other listed file(s) the loader skipped as unreadable, e.g. "
                f"{listed_skipped[0][0]}: {listed_skipped[0][1]})" if listed_skipped else "")
        raise DatasetError(f"dataset {name!r}: groups file {groups_file} names {_some(unknown)} "
                           f"that the dataset does not have (paths are relative to its root, e.g. "
                           f"{paths[0] if paths else 'class/image.png'}); fix or remove those rows{also}")
    named = [listed.get(p) for p in paths]
    return named, [p for p, g in zip(paths, named) if g is None], listed_skipped


def _skipped_files(dataset):
    """{path relative to the dataset's root: reason} of the files its loader skipped."""
    root = Path(dataset.source) if dataset.source else None
    found = {}
    for path, reason in dataset.skipped:
        try:
            relative = Path(path).relative_to(root).as_posix() if root else path
        except ValueError:  # not under the root: cannot be a groups file's row
            continue
        found[normalise_path(relative)] = reason
    return found


def _some(paths):
    """'3 files (a, b, c)' or '12 files (a, b, c, d, e, ...)'."""
    shown = ", ".join(paths[:SHOWN]) + (", ..." if len(paths) > SHOWN else "")
    return f"{len(paths)} file{'s' if len(paths) != 1 else ''} ({shown})"
