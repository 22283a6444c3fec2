#!/usr/bin/env bash
# Run every check CI runs: ruff (lint + format), mypy on core/, the import-linter contract, and
# pytest (under Xvfb, so the OpenGL views are tested too). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
echo "== ruff";          $bin/ruff check . && $bin/ruff format --check .
echo "== mypy core/";    $bin/mypy core
echo "== import-linter"; $bin/lint-imports
echo "== pytest"
export QT_QPA_PLATFORM=${QT_QPA_PLATFORM:-offscreen}
$bin/python -m pytest "$@"
