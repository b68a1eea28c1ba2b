"""What a run says: reading a run directory back (results), leaderboards (leaderboard), the
statistics (stats), probabilistic scores and calibration (calibration), plots (plots), the
Markdown report (report, markdown) and comparing two runs (compare)."""
