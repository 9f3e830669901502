#!/bin/sh
# Compose demo: create the node on its first start (keys, signed card, database), then
# run it. KPNET_NODE_ID, KPNET_NODE_NAME, KPNET_PUBLIC_URL and KPNET_DATABASE_URL come
# from compose.yaml; `kpnet init` reads the database URL from KPNET_DATABASE_URL, so the
# password is not written into config.toml.
set -eu

data_dir="${KPNET_DATA_DIR:?KPNET_DATA_DIR is not set}"

if [ ! -f "$data_dir/config.toml" ]; then
    kpnet init --data-dir "$data_dir" \
        --node-id "${KPNET_NODE_ID:?KPNET_NODE_ID is not set}" \
        --name "${KPNET_NODE_NAME:?KPNET_NODE_NAME is not set}" \
        --url "${KPNET_PUBLIC_URL:?KPNET_PUBLIC_URL is not set}"
fi

exec kpnet serve --data-dir "$data_dir"
