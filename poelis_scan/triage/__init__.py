"""After detection: which findings are suppressed (inline comments, configuration, baseline),
which are verified and reported, and which fail the run."""
