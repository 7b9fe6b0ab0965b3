#!/usr/bin/env bash
# Lints the AWS deployment offline: cfn-lint on the CloudFormation template, every finding
# fatal. cfn-lint comes from PyPI, pinned so a new release's rules cannot turn CI red on their
# own, and lives in a venv under ~/.cache/tablecast/ (installed once, when missing).
#
#   bash infra/aws/lint.sh                          # lints infra/aws/tablecast.yaml
#   CFN_LINT_VERSION=1.58.0 bash infra/aws/lint.sh  # another pinned version
set -euo pipefail
cd "$(dirname "$0")"

version="${CFN_LINT_VERSION:-1.58.0}"
venv="${TABLECAST_CACHE:-$HOME/.cache/tablecast}/cfn-lint-$version"
cfn_lint="$venv/bin/cfn-lint"

if [[ ! -x "$cfn_lint" ]] || ! "$cfn_lint" --version 2>/dev/null | grep -qx "cfn-lint $version"; then
    echo "aws lint: installing cfn-lint $version from PyPI into $venv"
    command -v python3 >/dev/null 2>&1 || { echo "aws lint: python3 is missing" >&2; exit 1; }
    rm -rf "$venv"
    python3 -m venv "$venv" || { echo "aws lint: cannot create a venv (python3-venv missing?)" >&2; exit 1; }
    "$venv/bin/pip" install --quiet --disable-pip-version-check "cfn-lint==$version" || {
        echo "aws lint: cannot install cfn-lint $version from PyPI" >&2
        rm -rf "$venv"
        exit 1
    }
fi

# Every finding fails, informational ones (I...) included; no rule is ignored.
echo "aws lint: $("$cfn_lint" --version) on tablecast.yaml"
if ! "$cfn_lint" --include-checks I --format parseable -- tablecast.yaml; then
    echo "aws lint: cfn-lint found problems in infra/aws/tablecast.yaml (see above)" >&2
    exit 1
fi
echo "aws lint: tablecast.yaml is clean"
