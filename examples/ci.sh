#!/bin/sh
# Any CI: fail the job when the commits under test introduce a Poelis API key, and keep a JSON
# report as an artifact. BASE_SHA is the commit the change is compared with (default: the
# remote main branch); the clone must hold the full history (no shallow fetch).
# POELIS_SCAN_REV is the poelis-scan commit to install: a full commit SHA (no release tags
# yet). Never install the bare name poelis-scan from a package index: no index holds this
# project, and anyone could publish a package under that name. UNTRUSTED=1 (the default) suits changes from a pull or merge request: the
# configuration, baseline and allow comments they bring are not obeyed. Set UNTRUSTED=0 only
# for branches everyone who can push to is trusted with.
set -eu
: "${POELIS_SCAN_REV:?set POELIS_SCAN_REV to the poelis-scan commit SHA to install}"
pip install "git+https://github.com/poelis-scan/poelis-scan@${POELIS_SCAN_REV}"
base="${BASE_SHA:-origin/main}"
set -- --strict   # an input skipped for an error (unreadable, corrupt) fails the job
[ "${UNTRUSTED:-1}" = 0 ] || set -- "$@" --untrusted
status=0
poelis-scan git --range "$base..HEAD" "$@" --format json --output poelis-scan.json || status=$?
poelis-scan git --range "$base..HEAD" "$@" --quiet || true   # the same findings, readable in the log
exit "$status"
