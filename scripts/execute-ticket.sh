#!/usr/bin/env bash
# Demo ticket command for the ticket executor (queue `tickets`): says what it does and takes a
# moment. A real deployment points --ticket-command at its own implementation.
#   usage: execute-ticket.sh PROJECT_ID TICKET_ID
set -euo pipefail
project="${1:?project id}"
ticket="${2:?ticket id}"
echo "project ${project}: executing ticket ${ticket} (attempt ${LANES_ATTEMPT:-1})"
sleep "${TICKET_SECONDS:-0.$((RANDOM % 7 + 3))}"
echo "project ${project}: ticket ${ticket} done"
