#!/bin/sh
# Any CI: fail the job when the commits under test introduce a Poelis API key, and keep a JSON
# report as an artifact. BASE_SHA is the commit the change is compared with (default: the
# remote main branch); the clone must hold the full history (no shallow fetch).
set -eu
pip install poelis-scan
base="${BASE_SHA:-origin/main}"
status=0
poelis-scan git --range "$base..HEAD" --format json --output poelis-scan.json || status=$?
poelis-scan git --range "$base..HEAD" --quiet || true   # the same findings, readable in the log
exit "$status"
