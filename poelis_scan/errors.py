"""The one base class for problems a user can act on.

Its text is one line, says what to do where it can, and never holds a secret: the command line
prints it as ``poelis-scan: error: …`` (exit status 2), and a worker process may send it back
to the parent as it is. Imports nothing.
"""

from __future__ import annotations


class ScanError(Exception):
    """A problem the user can act on; its text is one line and holds no secret."""
