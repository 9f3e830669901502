#!/bin/sh
# Builds the node's data directory from the ConfigMap (config.toml) and the Secret
# (keys and signed card), with the modes the node demands: the node refuses key files
# that others can read, and a Secret volume mounted with fsGroup is group-readable.
set -eu

# Where the ConfigMap and the Secret are mounted (see deployment.yaml).
config="${KPNET_CONFIG_SOURCE:-/etc/kpnet/config}"
keys="${KPNET_KEYS_SOURCE:-/etc/kpnet/keys}"
data="${KPNET_DATA_DIR:?KPNET_DATA_DIR is not set}"

umask 077
mkdir -p "$data/keys"
chmod 0700 "$data" "$data/keys"

for name in signing.key encryption.key; do
    if [ ! -f "$keys/$name" ] || [ "$(wc -c < "$keys/$name")" -ne 32 ]; then
        echo "Secret kpnet-node-keys: $name is missing or not a 32-byte key;" \
             "create the Secret from the node's data directory (docs/operations.md)" >&2
        exit 1
    fi
    cp "$keys/$name" "$data/keys/$name"
done
# Encryption keys retired by `kpnet keys rotate`, still needed to open late messages,
# and the previous signing key it signs with until every peer has the new card.
for path in "$keys"/encryption.*.retired "$keys"/signing.*.previous; do
    [ -f "$path" ] || continue
    cp "$path" "$data/keys/$(basename "$path")"
done
cp "$keys/card.json" "$data/card.json"
cp "$config/config.toml" "$data/config.toml"
chmod 0600 "$data"/keys/* "$data/card.json" "$data/config.toml"
echo "data directory $data ready"
