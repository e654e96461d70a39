# shellcheck shell=bash
# Shared shell functions for test/run_tests.sh and test/demo.sh.
#
# Source it from bash:  . "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
#
# PostgreSQL refuses to run as root, so every server command runs as the
# `postgres` OS user (runuser); the clients (psql, pg_regress) run as the
# calling user and connect through a Unix socket in the cluster's directory.

# Absolute path of the repository (the parent of this file's directory).
REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export REPO_ROOT

PG_MAJOR=15
# STREAMING_PG_ROOT: a relocated copy of the PostgreSQL installation
# (test/pgroot.sh makes one) to build, install and test into, so that
# several checkouts can run their tests at once; empty: the system's.
PG_ROOT="${STREAMING_PG_ROOT:-}"
PG_BIN="$PG_ROOT/usr/lib/postgresql/$PG_MAJOR/bin"
PG_CONFIG="$PG_BIN/pg_config"
PG_OS_USER=postgres

# Compiler flags for our objects: any warning fails the build.
STREAMING_CFLAGS='-Wall -Wextra -Wno-unused-parameter -Wno-sign-compare -Wno-missing-field-initializers -Werror'

# ---------------------------------------------------------------- messages

log()  { printf '==> %s\n' "$*" >&2; }
warn() { printf 'WARNING: %s\n' "$*" >&2; }
die()  { printf 'ERROR: %s\n' "$*" >&2; exit 1; }

# Run a command as the postgres OS user (or directly if already that user),
# from / so that a current directory postgres cannot enter (e.g. under /root)
# does not matter; pass absolute paths.
as_postgres() {
	if [[ "$(id -un)" == "$PG_OS_USER" ]]; then
		(cd / && "$@")
	else
		(cd / && runuser -u "$PG_OS_USER" -- "$@")
	fi
}

# ---------------------------------------------------------------- build

# build: compile the extension; any compiler warning is an error.
# The compiler output is shown only on failure.
# With BUILD_CLEAN=1 (the default) objects are rebuilt from scratch, so that
# stale objects compiled without -Werror cannot hide warnings.
build() {
	local build_log
	build_log="$(mktemp /tmp/streaming-build.XXXXXX)"
	if [[ "${BUILD_CLEAN:-1}" == 1 ]]; then
		make -C "$REPO_ROOT" -s clean PG_CONFIG="$PG_CONFIG" >/dev/null 2>&1 || true
	fi
	log "building (warnings are errors)"
	# -k: compile every file, so that all diagnostics are shown at once
	if ! make -C "$REPO_ROOT" -k -j2 PG_CONFIG="$PG_CONFIG" \
			PG_CFLAGS="$STREAMING_CFLAGS" >"$build_log" 2>&1; then
		printf '\n---- build failed; compiler diagnostics ----\n' >&2
		# warnings and errors first, then the tail for context
		grep -E 'warning:|error:' "$build_log" >&2 || true
		printf -- '---- last lines ----\n' >&2
		tail -n 40 "$build_log" >&2
		rm -f "$build_log"
		return 1
	fi
	rm -f "$build_log"
}

# install: make install into the PostgreSQL 15 installation.
install_ext() {
	log "installing"
	local out
	if ! out="$(make -C "$REPO_ROOT" install PG_CONFIG="$PG_CONFIG" 2>&1)"; then
		printf '%s\n' "$out" >&2
		return 1
	fi
}

# build_test_tools: hook for test programs under test/ (e.g. the Kafka test
# broker built on librdkafka's mock cluster).  Runs `make -C test` only when
# test/Makefile exists.
build_test_tools() {
	if [[ -f "$REPO_ROOT/test/Makefile" ]]; then
		log "building test tools (make -C test)"
		make -C "$REPO_ROOT/test" -j2 PG_CONFIG="$PG_CONFIG"
	fi
}

# ---------------------------------------------------------------- clusters

# port_in_use PORT: true if something listens on TCP PORT (any address).
port_in_use() {
	local port=$1 hex
	if command -v ss >/dev/null 2>&1; then
		ss -Hltn "sport = :$port" 2>/dev/null | grep -q . && return 0
		return 1
	fi
	# no ss (minimal images): read the kernel's tables; state 0A = LISTEN
	hex="$(printf '%04X' "$port")"
	awk -v p=":$hex" '$2 ~ p"$" && $4 == "0A" { found = 1 } END { exit !found }' \
		/proc/net/tcp /proc/net/tcp6 2>/dev/null
}

# free_port [PREFERRED]: print PREFERRED if free, else a free port >= 15432.
# The clusters listen only on a Unix socket in their own directory, so a
# clash is harmless anyway; avoiding busy ports just keeps things unambiguous.
free_port() {
	local port=${1:-}
	if [[ -n "$port" ]] && ! port_in_use "$port"; then
		echo "$port"
		return
	fi
	for ((port = 15432 + RANDOM % 1000; port < 65000; port++)); do
		if ! port_in_use "$port" && [[ ! -e "/tmp/.s.PGSQL.$port" ]]; then
			echo "$port"
			return
		fi
	done
	die "no free port found"
}

# make_cluster_dir: print a fresh temp directory owned by postgres.
make_cluster_dir() {
	local dir
	dir="$(mktemp -d /tmp/streaming-test.XXXXXX)"
	chmod 755 "$dir"
	chown "$PG_OS_USER:" "$dir"
	echo "$dir"
}

# start_cluster DIR PORT: initdb DIR/data as postgres (trust auth), configure
# the extension preloaded, listening only on a Unix socket in DIR, log to
# DIR/server.log, and start it.  DIR must exist (it is chowned to postgres).
start_cluster() {
	local dir=$1 port=$2
	[[ -d "$dir" ]] || die "start_cluster: $dir does not exist"
	chmod 755 "$dir"
	chown "$PG_OS_USER:" "$dir"

	local out
	if ! out="$(as_postgres "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust \
			--nosync -E UTF8 --locale=C.UTF-8 2>&1)"; then
		printf '%s\n' "$out" >&2
		return 1
	fi
	as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null <<-EOF

		# ---- throwaway test cluster ----
		shared_preload_libraries = 'streaming'
		port = $port
		listen_addresses = ''
		unix_socket_directories = '$dir'
		fsync = off
		synchronous_commit = off
		full_page_writes = off
		max_worker_processes = 32
		# table sources read the WAL through logical decoding, with the
		# extension's library as output plugin
		wal_level = logical
		output_plugin_libraries = 'pgoutput, test_decoding, streaming'
		logging_collector = off
		log_line_prefix = '%m [%p] %q%a '
	EOF
	if ! as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
			-w -t 60 start >/dev/null; then
		warn "server did not start; last lines of $dir/server.log:"
		tail -n 30 "$dir/server.log" >&2 || true
		return 1
	fi
}

# start_bench_cluster: how every benchmark begins: install what is missing,
# build and install the extension (and the test tools with
# BENCH_TEST_TOOLS=1), then start a throwaway cluster in DIR on PORT
# (globals), which is stopped and removed on exit, after killing the
# process BROKER_KILL names, if any.
start_bench_cluster() {
	bash "$REPO_ROOT/test/setup.sh"
	[[ "$(id -u)" == 0 ]] || die "run as root (the server runs as the '$PG_OS_USER' OS user)"
	build
	install_ext
	if [[ "${BENCH_TEST_TOOLS:-0}" == 1 ]]; then
		build_test_tools >/dev/null
	fi
	DIR="$(make_cluster_dir)"
	PORT="$(free_port)"
	BROKER_KILL=""
	trap stop_bench_cluster EXIT
	start_cluster "$DIR" "$PORT"
}

stop_bench_cluster() {
	[[ -n "${BROKER_KILL:-}" ]] && kill "$BROKER_KILL" 2>/dev/null || true
	stop_cluster "$DIR"
	rm -rf "$DIR"
}

# configure_cluster DIR SETTING...: append settings (postgresql.conf lines,
# e.g. 'track_commit_timestamp = on') to the cluster of DIR and restart it,
# so that settings that need a restart take effect too.
configure_cluster() {
	local dir=$1
	shift
	printf '%s\n' "$@" | as_postgres tee -a "$dir/data/postgresql.conf" >/dev/null
	as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 restart >/dev/null
}

# stop_cluster DIR: fast shutdown; silently does nothing if not running.
stop_cluster() {
	local dir=$1
	[[ -f "$dir/data/postmaster.pid" ]] || return 0
	as_postgres "$PG_BIN/pg_ctl" -D "$dir/data" -m fast -w -t 60 stop \
		>/dev/null 2>&1 || true
}

# cluster_psql DIR PORT [psql args...]: psql as the postgres database user,
# no psqlrc, stop on the first error.
cluster_psql() {
	local dir=$1 port=$2
	shift 2
	PGHOST="$dir" PGPORT="$port" PGUSER=postgres PGDATABASE=postgres \
		"$PG_BIN/psql" -X -q -v ON_ERROR_STOP=1 "$@"
}
