"""Write a report that says the scan did not complete, for action/scan.sh.

Why: a workflow uploads the report with ``if: always()``. When poelis-scan could not run (the
install failed, a bad range, a missing commit), a missing file would only add a second, vaguer
error, and an empty report would read as "no key found". This one says the scan failed in the
place CI reads it: SARIF ``invocations[0].executionSuccessful: false`` with the reason as a
notification, GitLab ``scan.status: failure``.

Standard library only, and written for any Python 3 the runner may have, because it must work
exactly when installing poelis-scan did not. The project's URL and version are read from
``poelis_scan/version.py`` next to it, so there is still one place that declares them.
"""

from __future__ import annotations

import argparse
import ast
import json
import time
from pathlib import Path

PACKAGE_INIT = Path(__file__).resolve().parent.parent / "poelis_scan" / "version.py"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
GITLAB_SCHEMA = ("https://gitlab.com/gitlab-org/security-products/security-report-schemas/-/raw/"
                 "v15.2.1/dist/secret-detection-report-format.json")


def package_constants() -> dict[str, str]:
    """``__url__`` and ``__version__`` as assigned in the package, without importing it."""
    found: dict[str, str] = {}
    for node in ast.parse(PACKAGE_INIT.read_text(encoding="utf-8")).body:
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            for target in node.targets:
                if isinstance(target, ast.Name) and target.id in ("__url__", "__version__"):
                    found[target.id] = str(node.value.value)
    return found


def render(fmt: str, status: int, message: str) -> str:
    """The failure report in ``fmt``: a document a consumer of that format reads as failed."""
    constants = package_constants()
    url, version = constants["__url__"], constants["__version__"]
    if fmt == "sarif":
        log = {
            "$schema": SARIF_SCHEMA,
            "version": "2.1.0",
            "runs": [{
                "tool": {"driver": {"name": "poelis-scan", "version": version,
                                    "informationUri": url, "rules": []}},
                "results": [],
                "invocations": [{
                    "executionSuccessful": False,
                    "exitCode": status,
                    "toolExecutionNotifications": [
                        {"level": "error", "message": {"text": message}}],
                }],
            }],
        }
        return json.dumps(log, indent=2) + "\n"
    if fmt == "gitlab":
        now = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
        tool = {"id": "poelis-scan", "name": "poelis-scan", "version": version,
                "vendor": {"name": "poelis-scan"}, "url": url}
        report = {
            "version": "15.2.1",
            "schema": GITLAB_SCHEMA,
            "scan": {"analyzer": tool, "scanner": tool, "type": "secret_detection",
                     "start_time": now, "end_time": now, "status": "failure",
                     "messages": [{"level": "fatal", "value": message}]},
            "vulnerabilities": [],
        }
        return json.dumps(report, indent=2) + "\n"
    if fmt == "json":
        return json.dumps({"findings": [], "error": message, "exit_status": status},
                          indent=2) + "\n"
    if fmt == "jsonl":
        return json.dumps({"error": message, "exit_status": status}) + "\n"
    return f"poelis-scan: error: {message}\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--format", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--status", type=int, required=True)
    parser.add_argument("--message", required=True)
    args = parser.parse_args()
    try:
        Path(args.output).write_text(render(args.format, args.status, args.message[:2000]),
                                     encoding="utf-8")
    except OSError as error:
        raise SystemExit(f"poelis-scan action: error: cannot write {args.output}: "
                         f"{error.strerror}") from None


if __name__ == "__main__":
    main()
