"""BenchmarkResults: a finished run for a notebook, every table of its report as a DataFrame.

`run_benchmark` (benchmark.api) returns one; `BenchmarkResults.load(run_dir)` reads one back
from a run directory. Its tables are those of the run's Analysis
(benchmark.reporting.analysis), the same ones report.md renders.
"""

from dataclasses import dataclass
from pathlib import Path

from benchmark.errors import UsageError


@dataclass
class BenchmarkResults:
    """A finished run: its cells and everything the report computes from them.

    Leaderboards and statistics:

    - `summary`: one row per (dataset, estimator): each metric's mean, std and 95% interval,
      rank, the test against the dataset's best (`p_vs_best`, `worse_than_best`), times,
      training flags; `leaderboard(dataset)` is one dataset's rows, best first.
    - `overall`: one row per estimator, its mean rank across the datasets.
    - `scores`: one row per (dataset, estimator, fold) cell, failed and missing ones included.
    - `ranking`: the cross-dataset statistics (Friedman test, Nemenyi groups;
      benchmark.reporting.stats.Ranking).
    - `history`: the CNNs' per-epoch training curves, long form.
    - `problems`: one line per failed, missing or unreadable cell, skipped dataset, ...

    Every section of report.md:

    - `per_class`: per_class.csv, one row per (dataset, estimator, class): support, precision,
      recall, F1 of its pooled out-of-fold predictions; `best_of_family` marks the estimators
      the report compares (`family_comparisons`: {dataset: per_class.FamilyComparison}).
    - `tuning`: one row per tuned (dataset, estimator) of `run --tune`: tuned and default
      macro-F1 on the same folds, their difference and paired test's p, search and final-fit
      seconds, folds that kept the defaults; `tuning_folds`: each fold's choice.
    - `diagnostics`: one row per (dataset, estimator): the CNNs' budgets (batch size, epochs run
      of planned, steps, last-epoch training accuracy) and undertrained folds, the other
      iterative estimators' checks, library notices, and the evidence (reasons and warnings
      with their folds) behind the leaderboard's flags.
    - `sizes`: one row per (dataset, estimator, training size) of `run --train-sizes`: macro-F1
      with its interval, fit seconds, flagged folds; `crossovers`: {dataset: where the best CNN
      becomes significantly better than the best classical estimator, or why not}.
    - `calibration`: one row per (dataset, estimator): log loss, Brier, top-5 accuracy and ECE
      (fold mean and std), folds with probabilities, the pooled ECE and whether the estimator
      is its family's curve in the reliability diagram.
    - `near_duplicates`: one row per dataset: test images with a near-duplicate on the training
      side of their split, their share, cross-class pairs, and what --dedupe dropped.

    `analysis` is the benchmark.reporting.analysis.Analysis all of them come from.
    """

    cells: list  # benchmark.execution.cell_record.Cell, one per (dataset, estimator, fold)
    meta: dict  # what run.json holds: configuration, plan, datasets, versions, machine
    analysis: object  # benchmark.reporting.analysis.Analysis
    path: Path = None  # the run directory, when one was written (`out`, or save())

    @classmethod
    def load(cls, run_dir, keep_path=True, analysis=None):
        """The BenchmarkResults of the run stored in `run_dir`, its cells' probabilities read
        into memory (a run without `out` has its directory removed afterwards, and save()
        writes them again); `analysis`: the run's Analysis when it was computed already;
        `keep_path`: whether `path` names `run_dir`."""
        from benchmark.reporting.analysis import analyse
        from benchmark.reporting.results import load_run

        stored = load_run(run_dir)
        if analysis is None:
            analysis = analyse(stored)
        for cell in stored.cells:
            cell.probabilities, _ = stored.probabilities(cell)
        if not keep_path:
            analysis.run_dir = None  # the directory goes: the cells' probabilities are in memory
        return cls(stored.cells, stored.meta, analysis, stored.run_dir if keep_path else None)

    scores = property(lambda self: self.analysis.scores)
    summary = property(lambda self: self.analysis.summary)
    overall = property(lambda self: self.analysis.overall)
    history = property(lambda self: self.analysis.history)
    ranking = property(lambda self: self.analysis.ranking)
    problems = property(lambda self: self.analysis.problems)
    per_class = property(lambda self: self.analysis.per_class)
    family_comparisons = property(lambda self: self.analysis.family_comparisons)
    tuning = property(lambda self: self.analysis.tuning)
    tuning_folds = property(lambda self: self.analysis.tuning_folds)
    diagnostics = property(lambda self: self.analysis.diagnostics)
    sizes = property(lambda self: self.analysis.sizes)
    crossovers = property(lambda self: self.analysis.crossovers)
    calibration = property(lambda self: self.analysis.calibration)
    near_duplicates = property(lambda self: self.analysis.near_duplicates)

    @property
    def datasets(self):
        return list(self.summary["dataset"].drop_duplicates()) if len(self.summary) else []

    def leaderboard(self, dataset=None):
        """The leaderboard of `dataset` (the only one when None), best first, as a DataFrame."""
        if dataset is None:
            if len(self.datasets) != 1:
                raise ValueError(f"name one dataset of {self.datasets}")
            dataset = self.datasets[0]
        if dataset not in self.datasets:
            raise ValueError(f"no results for dataset {dataset!r}; this run has {self.datasets}")
        return self.summary[self.summary["dataset"] == dataset].reset_index(drop=True)

    def figures(self):
        """{(dataset, kind): matplotlib Figure} of the report's plots ("" for the critical-
        difference diagram; kinds f1, pareto, confusion, sizes, curves, reliability, cd); no
        file is written."""
        from benchmark.reporting.report import figures

        return figures(self.analysis)

    def save(self, path):
        """Write the run directory (run.json, cells/, report.md, CSVs, plots) at `path`, as the
        command line does; return its path. `path` must be new, empty or this run's own:
        ValueError, naming what it holds, for a folder of another run (whose cells would be
        ranked with these) or of other files."""
        from benchmark.execution.store import RunStore
        from benchmark.reporting.report import write_report

        store = RunStore(path)
        if store.path.resolve() != (self.path.resolve() if self.path else None):
            try:
                store.refuse_other_run("save these results")
                store.prepare()
            except UsageError as exc:
                raise ValueError(str(exc)) from None
            with store.lock():
                meta = dict(self.meta, run_id=store.path.name)
                store.write_meta(meta)
                for cell in self.cells:
                    store.save_cell(cell)
                write_report(store.path)
        self.path = store.path
        return store.path

    def __repr__(self):
        return (f"BenchmarkResults({len(self.datasets)} dataset(s), {self.summary['estimator'].nunique() if len(self.summary) else 0} "
                f"estimator(s), {len(self.cells)} cell(s){', ' + str(self.path) if self.path else ''})")
