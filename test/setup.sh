#!/usr/bin/env bash
# Install whatever is missing to build and test the extension on Debian 12.
#
# Run it (bash test/setup.sh) or source it; it is idempotent and quiet when
# everything is already installed.  Installing needs root; as another user it
# only checks, and fails with the list of missing packages.
#
# A `main` cluster that the Debian postgresql-common package may create and
# start on installation is neither used nor touched: the tests and the demo
# run their own throwaway clusters.

_streaming_setup() {
	set -euo pipefail

	# required to build, install and test
	local required=(
		postgresql-15            # server, initdb, pg_ctl, psql
		postgresql-server-dev-15 # pg_config, PGXS, headers, pg_regress, TAP modules' deps
		librdkafka-dev           # Kafka source/sink
		kcat                     # producing test messages
		libipc-run-perl          # PostgreSQL::Test::Cluster needs IPC::Run
		perl                     # prove, Test::More
		build-essential          # gcc, make
	)
	# nice to have: tests that need them skip themselves when absent
	local optional=(
		postgresql-15-hll        # an aggregate with a combine function from another extension
		postgresql-15-tdigest    # percentiles through a mergeable sketch (t/015_tdigest.pl)
	)

	local missing=() opt_missing=() pkg
	for pkg in "${required[@]}"; do
		_streaming_installed "$pkg" || missing+=("$pkg")
	done
	for pkg in "${optional[@]}"; do
		_streaming_installed "$pkg" || opt_missing+=("$pkg")
	done

	if ((${#missing[@]} == 0 && ${#opt_missing[@]} == 0)); then
		return 0
	fi

	if [[ "$(id -u)" != 0 ]]; then
		if ((${#missing[@]} > 0)); then
			printf 'ERROR: missing packages: %s\n' "${missing[*]}" >&2
			printf 'Run as root (e.g. sudo bash test/setup.sh) to install them.\n' >&2
			return 1
		fi
		printf 'note: optional package(s) not installed: %s\n' "${opt_missing[*]}" >&2
		return 0
	fi

	export DEBIAN_FRONTEND=noninteractive
	local apt_opts=(-y -q -o Dpkg::Use-Pty=0 --no-install-recommends)

	printf '==> installing packages: %s\n' "${missing[*]} ${opt_missing[*]}" >&2
	apt-get -qq update >/dev/null

	if ((${#missing[@]} > 0)); then
		local out
		if ! out="$(apt-get install "${apt_opts[@]}" "${missing[@]}" 2>&1)"; then
			printf '%s\n' "$out" | tail -n 30 >&2
			printf 'ERROR: could not install: %s\n' "${missing[*]}" >&2
			return 1
		fi
	fi

	# optional packages, one at a time: one being unavailable is not fatal
	for pkg in "${opt_missing[@]}"; do
		if apt-cache show "$pkg" >/dev/null 2>&1 &&
			apt-get install "${apt_opts[@]}" "$pkg" >/dev/null 2>&1; then
			:
		else
			printf 'note: optional package %s is not available; skipped\n' "$pkg" >&2
		fi
	done

	# the server binaries this project uses
	[[ -x /usr/lib/postgresql/15/bin/pg_config ]] ||
		{ printf 'ERROR: /usr/lib/postgresql/15/bin/pg_config is missing after install\n' >&2; return 1; }
}

# dpkg-query: is PKG installed (status "install ok installed")?
_streaming_installed() {
	[[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null)" == "install ok installed" ]]
}

if [[ "${BASH_SOURCE[0]}" == "$0" ]]; then
	# executed
	_streaming_setup
else
	# sourced: run in a subshell so that `set -e` and friends do not leak
	( _streaming_setup )
fi
