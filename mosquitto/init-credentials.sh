#!/bin/sh
# MQTT credentials made on first start (docker-compose's one-shot `mqtt-init` service), and
# the InfluxDB token and admin passwords of the `grafana` profile (at the end).
#
#   init-credentials.sh [DIR]      DIR: the `secrets` volume (default /secrets)
#
# For every user of the ACL (./acl): a random password in DIR/<user>, made once and never
# overwritten; delete a file and run again to change that password. Then the broker's
# DIR/passwd, rebuilt from those files on every run (hashed by mosquitto_passwd) and swapped
# in atomically, so a new user in a later release gets in without touching the others.
# Nothing here goes into git: the passwords exist only in the volume.
#
# Who reads what (uids of the images): the enerbox services read their own file (uid 1000,
# ENERBOX_UID); mosquitto reads passwd (uid 1883, MOSQUITTO_UID); the consumers' passwords
# are for you to paste into Home Assistant, Node-RED or Grafana (root only):
#   docker compose run --rm --entrypoint cat mqtt-init /secrets/homeassistant
set -eu

dir="${1:-/secrets}"
services="teleinfo vedirect inverter pulses temperature relays shedding automation historian display api enerbox"
consumers="homeassistant nodered grafana"
enerbox_uid="${ENERBOX_UID:-1000}"
mosquitto_uid="${MOSQUITTO_UID:-1883}"

umask 077
mkdir -p "$dir"
chmod 755 "$dir"  # traversable by the services and mosquitto; each file keeps its own mode

is_root() { [ "$(id -u)" = 0 ]; }

new_password() {
    # 32 letters and digits from the kernel's CSPRNG (about 190 bits); shell-safe.
    LC_ALL=C tr -dc 'A-Za-z0-9' </dev/urandom | head -c 32
}

for user in $services $consumers; do
    file="$dir/$user"
    if [ ! -s "$file" ]; then
        new_password >"$file.tmp"
        mv "$file.tmp" "$file"
        echo "mqtt-init: new password for $user"
    fi
    chmod 400 "$file"
done
if is_root; then
    for user in $services; do chown "$enerbox_uid" "$dir/$user"; done
fi

# The passwords go on mosquitto_passwd's command line: visible to `ps` in this short-lived
# container only (mosquitto_passwd 2.0 has no stdin batch mode).
tmp="$dir/passwd.tmp"
rm -f "$tmp"
create="-c"
for user in $services $consumers; do
    mosquitto_passwd $create -b "$tmp" "$user" "$(cat "$dir/$user")"
    create=""
done
chmod 600 "$tmp"
if is_root; then chown "$mosquitto_uid:$mosquitto_uid" "$tmp"; fi
mv "$tmp" "$dir/passwd"
echo "mqtt-init: $dir/passwd has $(wc -l <"$dir/passwd") users"

# InfluxDB and Grafana (the `grafana` profile): the InfluxDB admin token the historian writes
# with and Grafana reads with, InfluxDB's and Grafana's admin passwords. Each one is taken
# from the environment when .env sets it (INFLUXDB_TOKEN, INFLUXDB_ADMIN_PASSWORD,
# GRAFANA_ADMIN_PASSWORD: rewritten on every run, .env wins), else made once and kept, like
# the MQTT passwords. InfluxDB and Grafana read them on their first start only (InfluxDB's
# setup, Grafana's admin user): changing one later means changing it there too.
# Readers: influxdb-* root (the influxdb container's entrypoint reads them before it drops
# privileges), influxdb-token the historian (ENERBOX_UID), grafana-* Grafana (GRAFANA_UID).
grafana_uid="${GRAFANA_UID:-472}"

database_secret() {  # FILE VALUE_FROM_ENV
    if [ -n "$2" ]; then
        printf '%s' "$2" >"$dir/$1.tmp"
        mv "$dir/$1.tmp" "$dir/$1"
    elif [ ! -s "$dir/$1" ]; then
        new_password >"$dir/$1.tmp"
        mv "$dir/$1.tmp" "$dir/$1"
        echo "mqtt-init: new $1"
    fi
    chmod 400 "$dir/$1"
}

database_secret influxdb-token "${INFLUXDB_TOKEN:-}"
database_secret influxdb-admin-password "${INFLUXDB_ADMIN_PASSWORD:-}"
database_secret grafana-admin-password "${GRAFANA_ADMIN_PASSWORD:-}"
# Grafana's own copy of the token: one reader per file, as for the MQTT passwords.
rm -f "$dir/grafana-influxdb-token"
cp "$dir/influxdb-token" "$dir/grafana-influxdb-token"
chmod 400 "$dir/grafana-influxdb-token"
if is_root; then
    chown "$enerbox_uid" "$dir/influxdb-token"
    chown "$grafana_uid" "$dir/grafana-influxdb-token" "$dir/grafana-admin-password"
fi
