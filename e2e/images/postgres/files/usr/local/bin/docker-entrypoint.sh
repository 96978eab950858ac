#!/bin/sh
# The official postgres image's entrypoint, reduced: initdb on first start, then postgres.
set -eu
PGBIN=/usr/lib/postgresql/15/bin
: "${PGDATA:=/var/lib/postgresql/data}"
export PGDATA
if [ "$(id -u)" = 0 ]; then
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA" /var/run/postgresql
	chmod 700 "$PGDATA"
	exec setpriv --reuid=postgres --regid=postgres --init-groups "$0" "$@"
fi
if [ ! -s "$PGDATA/PG_VERSION" ]; then
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA" || : # as the official entrypoint: initdb says what is wrong
	# initdb looks its user up: give a UID without a passwd entry one, as the official image does.
	if ! getent passwd "$(id -u)" >/dev/null; then
		NSS_WRAPPER_PASSWD="$(mktemp)"
		NSS_WRAPPER_GROUP="$(mktemp)"
		echo "postgres:x:$(id -u):$(id -g):PostgreSQL:$PGDATA:/bin/false" >"$NSS_WRAPPER_PASSWD"
		echo "postgres:x:$(id -g):" >"$NSS_WRAPPER_GROUP"
		export NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
		export LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libnss_wrapper.so
	fi
	"$PGBIN/initdb" --username=postgres --auth-local=trust --auth-host=trust -D "$PGDATA"
	unset LD_PRELOAD NSS_WRAPPER_PASSWD NSS_WRAPPER_GROUP
	echo "listen_addresses = '*'" >>"$PGDATA/postgresql.conf"
	echo "host all all all trust" >>"$PGDATA/pg_hba.conf"
fi
exec "$PGBIN/postgres" -D "$PGDATA" "$@"
