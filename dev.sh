#!/usr/bin/env bash
# Set up the project in ./.venv and run the main job or the tests.
#   ./dev.sh demo   install, run the main job on embedded defaults (no server to start), serve the UI
#   ./dev.sh test   install with the development extras and run the test suite
set -euo pipefail
cd "$(dirname "$0")"
PYTHON=${PYTHON:-python3}
VENV=${RECSYS_VENV:-.venv}

setup() {
  local extras=$1
  if [ ! -x "$VENV/bin/python" ]; then
    "$PYTHON" -m venv "$VENV"
  fi
  "$VENV/bin/python" -m pip install --quiet --upgrade pip
  # torch first, pinned: a looser range would pull a multi-gigabyte CUDA build where a CPU one is wanted.
  "$VENV/bin/python" -m pip install --quiet "torch==${RECSYS_TORCH_VERSION:-2.13.0}"
  # setuptools warns about every editable install; what the user reads is the job's own output
  PYTHONWARNINGS=ignore "$VENV/bin/python" -m pip install --quiet -e ".[${extras}]"
}

case "${1:-}" in
  demo)
    setup all
    shift
    exec "$VENV/bin/recsys" demo --serve "$@"
    ;;
  test)
    setup dev
    shift
    exec "$VENV/bin/python" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo | ./dev.sh test [pytest args]" >&2
    exit 2
    ;;
esac
