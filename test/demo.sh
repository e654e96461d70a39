#!/usr/bin/env bash
# `make demo`: install what is missing, build, install, start a throwaway
# cluster in /tmp/streaming-demo, and feed CSV files to a live continuous
# query for about 20 seconds, printing its result table as it changes.
# The cluster is left running at the end; `bash test/demo_stop.sh` stops it.

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
cd "$REPO_ROOT"

DEMO_DIR=/tmp/streaming-demo
INCOMING="$DEMO_DIR/incoming"
DURATION=20          # seconds of live feed
TICK=2               # seconds between rounds of new files
ROWS_PER_FILE=50
NAMES=(apple banana cherry damson elder fig grape)

# The query's background worker (create_query starts it) processes the
# files as they appear.  Set to 1 to run the micro-batches from this script
# with streaming.run() instead.
DRIVE_BATCHES=0

# ---------------------------------------------------------------- prepare

bash "$REPO_ROOT/test/setup.sh"
[[ "$(id -u)" == 0 ]] || die "run as root (the demo server runs as the '$PG_OS_USER' OS user)"
build
install_ext

# a previous demo cluster, if any
if [[ -d "$DEMO_DIR" ]]; then
	log "stopping and removing the previous demo cluster"
	stop_cluster "$DEMO_DIR"
	rm -rf "$DEMO_DIR"
fi

mkdir -p "$DEMO_DIR"
PORT="$(free_port 5499)"
log "starting the demo cluster in $DEMO_DIR (port $PORT)"
start_cluster "$DEMO_DIR" "$PORT"

# On a failure or interrupt from here on, show the server log and stop the
# cluster; only a demo that ran to the end leaves it running.
DEMO_DONE=0
on_exit() {
	((DEMO_DONE)) && return 0
	warn "the demo did not finish; last lines of $DEMO_DIR/server.log:"
	tail -n 30 "$DEMO_DIR/server.log" >&2 || true
	stop_cluster "$DEMO_DIR"
}
trap on_exit EXIT
trap 'exit 130' INT TERM

sql() { cluster_psql "$DEMO_DIR" "$PORT" "$@"; }

mkdir -p "$INCOMING"
chown "$PG_OS_USER:" "$INCOMING"
chmod 755 "$INCOMING"

log "creating the source 'orders' and the continuous query 'sales_by_name'"
sql >/dev/null <<EOF
CREATE EXTENSION streaming;
SELECT streaming.create_source('orders', 'file',
         schema  => 'id int, name text, value float8',
         options => '{"path": "$INCOMING", "format": "csv", "header": true}');
SELECT streaming.create_query('sales_by_name',
         \$\$SELECT name, count(*) AS orders, sum(value) AS total, avg(value) AS average
             FROM orders GROUP BY name\$\$,
         output_mode => 'complete');
EOF

# ---------------------------------------------------------------- live feed

NEXT_ID=1
NEXT_FILE=1

# write_file: one CSV file of $ROWS_PER_FILE orders.  It is written under a
# dot-prefixed name (which the file source ignores) and renamed into place,
# so the source never sees a partial file.
write_file() {
	local final tmp i name
	final="$(printf '%s/orders-%05d.csv' "$INCOMING" "$NEXT_FILE")"
	tmp="$INCOMING/.$(basename "$final").tmp"
	{
		echo "id,name,value"
		for ((i = 0; i < ROWS_PER_FILE; i++)); do
			name="${NAMES[RANDOM % ${#NAMES[@]}]}"
			printf '%d,%s,%d.%02d\n' "$NEXT_ID" "$name" $((RANDOM % 100)) $((RANDOM % 100))
			NEXT_ID=$((NEXT_ID + 1))
		done
	} >"$tmp"
	chown "$PG_OS_USER:" "$tmp"
	chmod 644 "$tmp"
	mv "$tmp" "$final"
	NEXT_FILE=$((NEXT_FILE + 1))
}

SUMMARY_SQL="
SELECT coalesce(format('last batch %s: %s input rows', p.batch_id, p.input_rows), 'no batch yet')
       || format('; %s files processed in total',
                 (SELECT count(*) FROM streaming.offsets o WHERE o.query = 'sales_by_name'))
  FROM (SELECT 1) AS one
  LEFT JOIN LATERAL (SELECT batch_id, input_rows FROM streaming.progress
                      WHERE query = 'sales_by_name'
                      ORDER BY batch_id DESC LIMIT 1) AS p ON true"

echo
echo "Feeding CSV files into $INCOMING for ${DURATION} s;"
echo "continuous query: SELECT name, count(*), sum(value), avg(value) FROM orders GROUP BY name"

start=$SECONDS
rounds=$((DURATION / TICK))
for ((round = 1; round <= rounds; round++)); do
	nfiles=$((1 + RANDOM % 3))
	for ((f = 0; f < nfiles; f++)); do write_file; done

	if ((DRIVE_BATCHES)); then
		sql -At -c "SELECT streaming.run('sales_by_name')" >/dev/null
	else
		sleep 1   # the worker picks new files up within streaming.idle_poll
	fi

	printf '\n==== %s  round %d/%d: +%d file(s), %d rows written so far ====\n' \
		"$(date +%T)" "$round" "$rounds" "$nfiles" $((NEXT_ID - 1))
	# extra_float_digits = 0: 15 significant digits, so 700.95 is not 700.9499999999999
	PGOPTIONS='-c extra_float_digits=0' \
		sql -P footer=off -c "SELECT * FROM sales_by_name ORDER BY name"
	sql -At -c "$SUMMARY_SQL"

	# keep a steady pace whatever the batch took
	wait_s=$((start + round * TICK - SECONDS))
	((round == rounds || wait_s <= 0)) || sleep "$wait_s"
done

DEMO_DONE=1

# ---------------------------------------------------------------- epilogue

cat <<EOF

The demo cluster is still running.  Connect with:

    psql -h $DEMO_DIR -p $PORT -U postgres

Worth a look:

    SELECT * FROM sales_by_name ORDER BY name;
    SELECT * FROM streaming.progress ORDER BY batch_id DESC LIMIT 5;
    SELECT * FROM streaming.explain('sales_by_name');
    SELECT * FROM streaming.queries;
    SELECT * FROM streaming.offsets ORDER BY batch_id DESC LIMIT 5;

Drop more CSV files (header id,name,value) into $INCOMING
(readable by the postgres user), the query's worker picks them up;
watch it with:  SELECT * FROM streaming.status;

Server log: $DEMO_DIR/server.log
Stop and remove the demo cluster:  bash test/demo_stop.sh
EOF
