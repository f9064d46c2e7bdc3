"""Git repositories as a source: plumbing (run git, cat-file), objects (what the store, a
range or the index holds), ranges (CI ranges and hook rev sets, the selection per mode),
contents (the worker body) and provenance (which commit put a key where)."""
