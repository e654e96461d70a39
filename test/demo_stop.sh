#!/usr/bin/env bash
# Stop the cluster that `make demo` left running and remove its directory.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

DEMO_DIR=/tmp/streaming-demo

if [[ ! -d "$DEMO_DIR" ]]; then
	echo "no demo cluster in $DEMO_DIR"
	exit 0
fi
stop_cluster "$DEMO_DIR"
rm -rf "$DEMO_DIR"
echo "demo cluster stopped and $DEMO_DIR removed"
