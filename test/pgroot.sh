#!/bin/bash
# pgroot.sh DIR: make DIR a relocated copy of the PostgreSQL 15 installation
# (binaries, libraries and extensions, share files; headers linked), for
#   STREAMING_PG_ROOT=DIR make test
# so that tests of several checkouts can run at once without installing
# into the same server.  PostgreSQL finds its files relative to its binaries.
set -euo pipefail
dir="${1:?usage: pgroot.sh DIR}"
mkdir -p "$dir/usr/lib/postgresql" "$dir/usr/share/postgresql" "$dir/usr/include"
rm -rf "$dir/usr/lib/postgresql/15" "$dir/usr/share/postgresql/15"
cp -a /usr/lib/postgresql/15 "$dir/usr/lib/postgresql/"
cp -a /usr/share/postgresql/15 "$dir/usr/share/postgresql/"
ln -sfn /usr/include/postgresql "$dir/usr/include/postgresql"
chmod 755 "$dir" "$dir/usr" "$dir/usr/lib" "$dir/usr/share" "$dir/usr/include"
echo "$dir"
