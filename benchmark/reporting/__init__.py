"""What a run says: reading a run directory back (results), everything the report says about
it computed once (analysis: leaderboards, statistics, diagnostics, tuning, training sizes,
per-class scores, calibration, near-duplicates), rendered as report.md (report, markdown,
plots), the terminal's leaderboards (leaderboard) and a notebook's BenchmarkResults
(benchmark_results); comparing two runs (compare)."""
