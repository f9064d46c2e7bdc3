#!/usr/bin/env bash
# The scan step of action.yml. Inputs arrive only as environment variables (INPUT_*, EVENT_*
# and the runner's GITHUB_*); each reaches git or poelis-scan as one argument, options as
# "--name=value" and paths after "--", so no input is ever read as shell code or as an option.
# Whatever happens, the report file named by INPUT_OUTPUT exists when this script ends:
# upload steps that run "if: always()" must find one.
set -euo pipefail

venv="$RUNNER_TEMP/poelis-scan-venv"
mode="${INPUT_MODE:-git-range}"
format="${INPUT_FORMAT:-sarif}"
output="${INPUT_OUTPUT:-}"
repo="${INPUT_REPOSITORY:-.}"
remote=origin   # the name actions/checkout gives the repository's remote

say() { printf 'poelis-scan action: %s\n' "$*"; }

python="$venv/bin/python"
[ -x "$python" ] || python="${INPUT_PYTHON:-python3}"

if [ -z "$output" ] || [[ "$output" == *$'\n'* ]]; then
    echo "::error title=poelis-scan::the output input must name one report file"
    exit 2
fi
# A file already there (a stale report, or one a pull request committed, or a symbolic link
# it planted) must never pass for this run's report.
rm -f -- "$output"

# finish STATUS MESSAGE: record the outputs; without a report from poelis-scan, write one that
# says the scan did not complete (SARIF: executionSuccessful false; GitLab: status failure).
finish() {
    local status=$1 message=$2
    if [ ! -f "$output" ]; then
        [ "$status" -ne 0 ] || status=2
        "$python" "$GITHUB_ACTION_PATH/action/failure_report.py" "--format=$format" \
            "--output=$output" "--status=$status" "--message=$message"
        say "poelis-scan wrote no report; $output now says the scan failed: $message"
    fi
    if [ -n "${GITHUB_OUTPUT:-}" ]; then
        printf 'report=%s\nexit-code=%s\n' "$output" "$status" >>"$GITHUB_OUTPUT"
    fi
    say "exit status $status (0: no key found, 1: keys found, 2: the scan failed)"
    exit "$status"
}

fail() {
    echo "::error title=poelis-scan::$1"
    finish 2 "$1"
}

if [ ! -x "$venv/bin/poelis-scan" ]; then
    fail "poelis-scan is not installed (the install step failed; see its log)"
fi

# git with the repository's own command settings switched off.
g() { git -c core.fsmonitor=false -c core.hooksPath=/dev/null -C "$repo" "$@"; }
commit_of() { g rev-parse --quiet --verify --end-of-options "$1^{commit}" 2>/dev/null; }

# A commit object (written to the clone's object store, reachable from no ref) whose parents
# are the given commits and whose tree is empty: "BASE..AFTER" is then exactly the commits of
# AFTER that none of the parents reaches, whatever their number (none: all of AFTER's history).
synthetic_base() {
    local tree body parent
    tree=$(g hash-object -t tree -w --stdin </dev/null)
    body="tree $tree"$'\n'
    for parent in "$@"; do body+="parent $parent"$'\n'; done
    body+="author poelis-scan action <poelis-scan@invalid> 0 +0000"$'\n'
    body+="committer poelis-scan action <poelis-scan@invalid> 0 +0000"$'\n\n'
    body+="poelis-scan: where the scanned commits branch off"$'\n'
    printf '%s' "$body" | g hash-object -t commit -w --stdin
}

# The range for git-range mode: the event's before..after, or, when "before" is all zeros (a
# new branch or tag) or not in the clone (a force-push replaced it), the pushed commits that
# no other branch on the remote has.
resolve_range() {
    local before after own reason count
    if [ -n "${INPUT_RANGE:-}" ]; then
        range=$INPUT_RANGE
        say "scanning the range given as input: $range"
        return
    fi
    case "${GITHUB_EVENT_NAME:-}" in
        pull_request | pull_request_target)
            before=${INPUT_BEFORE:-${EVENT_PR_BASE_SHA:-}}
            after=${INPUT_AFTER:-${EVENT_PR_HEAD_SHA:-}}
            own="refs/remotes/$remote/${GITHUB_HEAD_REF:-}"
            ;;
        *)
            before=${INPUT_BEFORE:-${EVENT_BEFORE:-}}
            after=${INPUT_AFTER:-${GITHUB_SHA:-}}
            case "${GITHUB_REF:-}" in
                refs/heads/*) own="refs/remotes/$remote/${GITHUB_REF#refs/heads/}" ;;
                *) own="${GITHUB_REF:-}" ;;
            esac
            ;;
    esac
    local after_sha
    if ! after_sha=$(commit_of "$after") || [ -z "$after" ]; then
        fail "the commit to scan up to ('$after') is not in the clone: check out with fetch-depth: 0"
    fi
    if [ -n "$before" ] && [[ ! "$before" =~ ^0+$ ]] && commit_of "$before" >/dev/null; then
        range="$before..$after_sha"
        say "scanning what $range introduced"
        return
    fi
    if [ -z "$before" ]; then
        reason="the ${GITHUB_EVENT_NAME:-} event names no 'before' commit"
    elif [[ "$before" =~ ^0+$ ]]; then
        reason="'before' is all zeros (a new branch or tag)"
    else
        reason="'before' commit $before is not in this clone (a force-push replaced it)"
    fi
    local -a others=() boundary=()
    mapfile -t others < <(g for-each-ref --format='%(refname)' "refs/remotes/$remote/" |
        grep -vxF -e "$own" -e "refs/remotes/$remote/HEAD" || true)
    count=$(g rev-list --count "$after_sha" --not "${others[@]}")
    mapfile -t boundary < <(g rev-list --boundary "$after_sha" --not "${others[@]}" |
        sed -n 's/^-//p')
    local base
    if [ "$count" -eq 0 ]; then
        base=$after_sha
    elif [ "${#boundary[@]}" -eq 1 ]; then
        base=${boundary[0]}
    else
        base=$(synthetic_base "${boundary[@]}")
    fi
    range="$base..$after_sha"
    local note="$reason: scanning the $count pushed commit(s) up to $after_sha that no other"
    note+=" branch on $remote has (${#others[@]} other branch(es); $own itself not counted),"
    note+=" as the range $range"
    say "$note"
    echo "::notice title=poelis-scan::$note"
}

untrusted=0
case "${INPUT_UNTRUSTED:-auto}" in
    auto)
        case "${GITHUB_EVENT_NAME:-}" in
            push | schedule | workflow_dispatch) untrusted=0 ;;
            *) untrusted=1 ;;
        esac
        ;;
    true) untrusted=1 ;;
    false) untrusted=0 ;;
    *) fail "untrusted must be auto, true or false, not '${INPUT_UNTRUSTED}'" ;;
esac

cmd=("$venv/bin/poelis-scan")
case "$mode" in
    git-range)
        resolve_range
        cmd+=(git "--range=$range")
        ;;
    git) cmd+=(git) ;;
    scan) cmd+=(scan) ;;
    *) fail "mode must be git-range, git or scan, not '$mode'" ;;
esac
# --strict: an input skipped for an error (unreadable, corrupt, over a limit) fails the run.
cmd+=("--format=$format" "--output=$output" --strict)
# --untrusted: configuration and baselines inside the scanned content are not obeyed.
[ "$untrusted" -eq 0 ] || cmd+=(--untrusted)
extra=()
read -r -d '' -a extra <<<"${INPUT_ARGS:-}" || true
cmd+=("${extra[@]}" --)
if [ "$mode" = scan ]; then
    mapfile -t paths <<<"${INPUT_PATHS:-.}"
    for path in "${paths[@]}"; do
        [ -z "$path" ] || cmd+=("$path")
    done
else
    cmd+=("$repo")
fi

say "running: $(printf '%q ' "${cmd[@]}")"
errors="$RUNNER_TEMP/poelis-scan-stderr.$$"
status=0
# What the scan prints may come from the scanned content (file names, refs): GitHub must not
# read workflow commands ("::error ...") in it.
token="poelis-scan-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
echo "::stop-commands::$token"
"${cmd[@]}" 2>"$errors" || status=$?
cat -- "$errors" >&2
echo "::$token::"
last=$(grep -v '^[[:space:]]*$' "$errors" | tail -n 1 | cut -c 1-500 || true)
rm -f -- "$errors"
finish "$status" "poelis-scan exited with status $status: ${last:-no message}"
