"""How bytes are read: bounded windows with line and column (stream), archives and their
limits, the head-then-archive-or-stream choice (readers), and the workers that run it all in
parallel. Imports detect/ and nothing above."""
