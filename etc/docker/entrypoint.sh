#!/bin/sh
# The container's entry point (Dockerfile): run twistd on the config, writing one with fresh
# secrets at the first start when none is mounted; any other command is run as given.
#   COFFEECHAT_CONFIG  the config to run (default /etc/coffeechat/coffeechat.toml, mounted read-only)
#   COFFEECHAT_DATA    the data dir, where a config is written when there is none (default /var/lib/coffeechat)
set -eu

if [ "$#" -gt 0 ] && [ "${1#-}" = "$1" ]; then
    exec "$@"
fi

data="${COFFEECHAT_DATA:-/var/lib/coffeechat}"
config="${COFFEECHAT_CONFIG:-/etc/coffeechat/coffeechat.toml}"
if [ ! -e "$config" ]; then
    config="$data/coffeechat.toml"
    if [ ! -e "$config" ]; then
        coffeechat init --config "$config" --data-dir "$data"
    fi
fi
exec twistd --nodaemon --pidfile= coffeechat --config "$config" "$@"
