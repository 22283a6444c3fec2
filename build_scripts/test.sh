#!/usr/bin/env bash
# Run every check CI runs: ruff (lint + format), mypy on core/, app/ and widgets/, the import-linter
# contracts (core never imports Qt or the GUI; layers app > widgets > core), and
# pytest — widget tests on Qt's offscreen platform, then the OpenGL view tests (marker `gl`) on
# a real X server (Xvfb, started by pytest-xvfb). Extra arguments go to both pytest runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bin=.venv/bin
echo "== ruff";          $bin/ruff check . && $bin/ruff format --check .
echo "== mypy";          $bin/mypy core app widgets
echo "== import-linter"; $bin/lint-imports
echo "== pytest (offscreen)"
QT_QPA_PLATFORM=offscreen $bin/python -m pytest -m "not gl" --no-xvfb "$@"
echo "== pytest (OpenGL views under Xvfb)"
rc=0
QT_QPA_PLATFORM=xcb $bin/python -m pytest -m gl "$@" || rc=$?
# exit code 5: no test carries the gl marker in this selection
[ "$rc" = 0 ] || [ "$rc" = 5 ] || exit "$rc"
