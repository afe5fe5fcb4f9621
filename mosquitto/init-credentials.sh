#!/bin/sh
# MQTT credentials made on first start (docker-compose's one-shot `mqtt-init` service).
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
