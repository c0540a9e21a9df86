#!/usr/bin/env bash
# Print the URL of a PostGIS database of our own. Uses the server on 127.0.0.1:5432 when one answers;
# otherwise starts a private cluster under data/pg on port 5433. Fails loudly: under CI a missing PostGIS
# must fail the run, never be skipped.
set -euo pipefail
url="${1:-postgresql://postgres@127.0.0.1:5432/onemap_test}"
db="${url##*/}"
hostport="${url#*@}"; hostport="${hostport%%/*}"
host="${hostport%%:*}"; port="${hostport##*:}"
PGBIN=/usr/lib/postgresql/15/bin

if ! pg_isready -q -h "$host" -p "$port"; then
  dir="$(pwd)/data/pg"; port=5433
  if [ ! -f "$dir/PG_VERSION" ]; then
    mkdir -p "$dir"; chown postgres "$dir" 2>/dev/null || true
    runuser -u postgres -- "$PGBIN/initdb" -D "$dir" -U postgres --auth=trust >&2
  fi
  pg_isready -q -h 127.0.0.1 -p $port || runuser -u postgres -- "$PGBIN/pg_ctl" -D "$dir" \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1" -l "$dir/log" -w start >&2
  host=127.0.0.1
fi
psql_="psql -X -q -v ON_ERROR_STOP=1 -h $host -p $port -U postgres"
exists=$($psql_ -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$db'")
[ "$exists" = 1 ] || $psql_ -d postgres -c "CREATE DATABASE \"$db\"" >&2
$psql_ -d "$db" -c "CREATE EXTENSION IF NOT EXISTS postgis" >&2
echo "postgresql://postgres@$host:$port/$db"
