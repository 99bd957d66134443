#!/usr/bin/env bash
# The Anthropic (`@anthropic-ai/sdk`) and Ollama (`ollama`) npm clients
# alone against `rewind serve`, through `rewind record` and from
# `rewind replay` with serve stopped: tools/clients/all.sh with only those
# clients (see there).
#
#   tools/clients/dialects.sh
set -euo pipefail
exec "$(dirname "$0")/all.sh" dialects
