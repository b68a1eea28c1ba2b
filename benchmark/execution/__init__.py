"""How cells run: the runner (runner) plans every (dataset, estimator, fold) cell, runs one
(cells) on a backend (backends: local worker processes or Dask), under a time limit
(time_limit), and scores it (metrics); cells are listed in the configured order (order). The
local workers fork from a preloaded server (worker_pool, preload_freeze) and die with their
run (parent_death, processes)."""
