"""Where bytes come from: files (and standard input) and git repositories. A source says which
units of work there are and gives the worker body that reads one; ``run.py`` does the rest."""
