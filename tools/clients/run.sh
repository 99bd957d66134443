#!/usr/bin/env bash
# The official `openai` npm client alone, 4.x and the current major (or the
# versions given), against `rewind serve`, through `rewind record` and from
# `rewind replay` with serve stopped: tools/clients/all.sh with only those
# clients (see there).
#
#   tools/clients/run.sh [VERSION ...]     # default: 4 latest
set -euo pipefail
versions=("$@")
[[ ${#versions[@]} -gt 0 ]] || versions=(4 latest)
exec "$(dirname "$0")/all.sh" "${versions[@]/#/openai@}"
