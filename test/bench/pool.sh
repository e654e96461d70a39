#!/usr/bin/env bash
# `make bench`: many continuous queries on the default pool of workers.
#
# POOL_QUERIES queries over file sources (one directory each) and
# POOL_KAFKA queries over one Kafka source (librdkafka's mock cluster, one
# consumer per query) run on a cluster with PostgreSQL's default
# max_worker_processes = 8 and the extension's default pool
# (streaming.max_workers = 4, streaming.workers_per_database = 2).  Printed:
#   - CPU of the pool workers while every query is idle, as a share of one
#     core: their own threads (the batches of all queries, file and Kafka)
#     apart from librdkafka's client threads, which are reported apart;
#   - the latency of a trickle of input: one file at a time into random
#     file queries (POOL_TRICKLE files per second for POOL_SECONDS); a row
#     carries the time its file was written, and is visible at the commit
#     time of its batch (track_commit_timestamp): p50, p99 and max;
#   - memory: the pool workers' proportional set size (Pss, smaps_rollup)
#     per query held.
#
#   POOL_QUERIES  file queries (default 1000)
#   POOL_KAFKA    Kafka queries (default 20)
#   POOL_IDLE     seconds of idle measurement (default 30)
#   POOL_TRICKLE  files per second during the trickle (default 50)
#   POOL_SECONDS  seconds of trickle (default 20)

set -euo pipefail

. "$(dirname "${BASH_SOURCE[0]}")/../lib.sh"
cd "$REPO_ROOT"

NQ=${POOL_QUERIES:-1000}
NK=${POOL_KAFKA:-20}
IDLE=${POOL_IDLE:-30}
RATE=${POOL_TRICKLE:-50}
SECS=${POOL_SECONDS:-20}

BENCH_TEST_TOOLS=1 start_bench_cluster
as_postgres tee -a "$DIR/data/postgresql.conf" >/dev/null <<-EOF
	track_commit_timestamp = on
	max_worker_processes = 8
	max_connections = 50
EOF
as_postgres "$PG_BIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 restart >/dev/null
sql() { cluster_psql "$DIR" "$PORT" -At "$@"; }

coproc BROKER { "$REPO_ROOT/test/kafka/kafka_test_broker"; }
BROKER_KILL=$BROKER_PID
read -r _ BOOTSTRAP <&"${BROKER[0]}"
echo "topic pooled 4" >&"${BROKER[1]}"
read -r reply <&"${BROKER[0]}"
[[ "$reply" == ok* ]] || die "creating the topic failed: $reply"

IN="$DIR/in"
as_postgres mkdir "$IN"
log "creating $NQ file queries and $NK Kafka queries"
t0=$(date +%s.%N)
{
	echo "CREATE EXTENSION streaming;"
	echo "SELECT streaming.create_source('k', 'kafka', 'k text, us bigint', '{\"bootstrap_servers\": \"$BOOTSTRAP\", \"topic\": \"pooled\", \"format\": \"csv\"}');"
	for i in $(seq "$NQ"); do
		echo "SELECT streaming.create_source('f$i', 'file', 'k text, us bigint', '{\"path\": \"$IN/d$i\", \"format\": \"csv\"}');"
		echo "SELECT streaming.create_query('q$i', 'SELECT k, us FROM f$i');"
	done
	for i in $(seq "$NK"); do
		echo "SELECT streaming.create_query('kq$i', 'SELECT k, us FROM k');"
	done
} >"$DIR/create.sql"
for i in $(seq "$NQ"); do as_postgres mkdir "$IN/d$i"; done
sql -f "$DIR/create.sql" >/dev/null 2>&1
created=$(printf "%.1f" "$(echo "$(date +%s.%N) - $t0" | bc)")
total=$((NQ + NK))
for _ in $(seq 1200); do
	[[ "$(sql -c "SELECT count(*) FROM streaming.queries WHERE worker_pid IS NOT NULL")" == "$total" ]] && break
	sleep 0.5
done
held=$(sql -c "SELECT count(*) FROM streaming.queries WHERE worker_pid IS NOT NULL")
[[ "$held" == "$total" ]] || die "only $held of $total queries are held by a worker"
PIDS=$(sql -c "SELECT string_agg(pid::text, ' ') FROM pg_stat_activity WHERE backend_type = 'streaming query'")
log "created in ${created}s; pool workers: $PIDS"
sleep 5

# cpu_ticks PID KIND: utime + stime of the process's threads; KIND rdk: the
# librdkafka threads (named rdk:*), own: the others
cpu_ticks() {
	local pid=$1 kind=$2 sum=0 t name ticks
	for t in /proc/"$pid"/task/*; do
		name=$(cat "$t/comm" 2>/dev/null) || continue
		ticks=$(sed 's/^.*) //' "$t/stat" | awk '{print $12 + $13}') || continue
		if [[ "$name" == rdk:* ]]; then
			[[ "$kind" == rdk ]] && sum=$((sum + ticks))
		else
			[[ "$kind" == own ]] && sum=$((sum + ticks))
		fi
	done
	echo "$sum"
}
sum_ticks() {
	local kind=$1 s=0 p
	for p in $PIDS; do s=$((s + $(cpu_ticks "$p" "$kind"))); done
	echo "$s"
}
HZ=$(getconf CLK_TCK)
own0=$(sum_ticks own); rdk0=$(sum_ticks rdk)
sleep "$IDLE"
own1=$(sum_ticks own); rdk1=$(sum_ticks rdk)
own_share=$(echo "scale=2; 100 * ($own1 - $own0) / $HZ / $IDLE" | bc)
rdk_share=$(echo "scale=2; 100 * ($rdk1 - $rdk0) / $HZ / $IDLE" | bc)

pss=0
for p in $PIDS; do
	pss=$((pss + $(awk '/^Pss:/ {print $2}' /proc/"$p"/smaps_rollup)))
done

log "trickle: $RATE files a second into random file queries for ${SECS}s"
n=$((RATE * SECS))
for j in $(seq "$n"); do
	i=$((RANDOM % NQ + 1))
	us=$(date +%s%6N)
	printf 'r%s,%s\n' "$j" "$us" >"$IN/d$i/.t$j"
	chmod 644 "$IN/d$i/.t$j"
	mv "$IN/d$i/.t$j" "$IN/d$i/t$j.csv"
	sleep "$(echo "scale=4; 1 / $RATE" | bc)"
done
for _ in $(seq 600); do
	got=$(sql -c "SELECT coalesce(sum(input_rows), 0) FROM streaming.progress WHERE query LIKE 'q%'")
	[[ "$got" -ge "$n" ]] && break
	sleep 0.5
done
{
	echo "CREATE TEMP TABLE lat (ms float8);"
	for i in $(seq "$NQ"); do
		echo "INSERT INTO lat SELECT extract(epoch FROM pg_xact_commit_timestamp(xmin) - to_timestamp(us / 1e6)) * 1000 FROM q$i;"
	done
	echo "SELECT count(*), round(percentile_cont(0.5) WITHIN GROUP (ORDER BY ms)::numeric, 1),
	             round(percentile_cont(0.99) WITHIN GROUP (ORDER BY ms)::numeric, 1), round(max(ms)::numeric, 1) FROM lat;"
} >"$DIR/lat.sql"
IFS='|' read -r rows p50 p99 pmax < <(sql -f "$DIR/lat.sql" | tail -1)

NW=$(wc -w <<<"$PIDS")
echo
echo "## Pool: $NQ file queries + $NK Kafka queries on $NW pool workers (max_worker_processes = 8)"
echo
echo "| figure | value |"
echo "|---|---|"
echo "| create_query, all $total | ${created} s |"
echo "| idle CPU of the pool workers, all queries (${IDLE} s) | ${own_share} % of a core |"
echo "| idle CPU of librdkafka's threads ($NK consumers) | ${rdk_share} % of a core |"
echo "| trickle latency, file write → commit ($rows rows, $RATE files/s) | p50 ${p50} ms, p99 ${p99} ms, max ${pmax} ms |"
echo "| pool workers' memory (Pss) per query held | $((pss / total)) kB |"
echo
echo "machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
