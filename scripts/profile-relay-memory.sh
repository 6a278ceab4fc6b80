#!/usr/bin/env bash
# Where the relay's memory per page goes: the load benchmark's idle pages
# (relay/examples/load) against a relay run under heaptrack (Debian
# `heaptrack`), then the heap at its peak, grouped by where it was allocated.
#
#   bash scripts/profile-relay-memory.sh [PAGES]     (default 2000)
#
# The relay is built with line tables and without stripping into
# target-size/ (the release profile strips symbols). Output: the raw
# profile in target-size/heaptrack/relay.zst and a summary on stdout.
set -euo pipefail
cd "$(dirname "$0")/.."
pages=${1:-2000}
out=target-size/heaptrack
command -v heaptrack >/dev/null || { echo "heaptrack is not installed (apt-get install heaptrack)" >&2; exit 1; }
mkdir -p "$out"
rm -f "$out"/relay.zst

CARGO_PROFILE_RELEASE_STRIP=false CARGO_PROFILE_RELEASE_DEBUG=line-tables-only \
  CARGO_PROFILE_RELEASE_LTO=thin CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
  cargo build --release -p shoal-relay --target-dir target-size
# The load generator starts "the relay binary" with its own flags: this
# wrapper makes that heaptrack running the relay.
wrapper="$out/relay.sh"
printf '#!/bin/sh\nexec heaptrack -o %s/relay %s/target-size/release/relay "$@"\n' "$PWD/$out" "$PWD" >"$wrapper"
chmod +x "$wrapper"

ulimit -n "$(ulimit -Hn)"
cargo run -q --release -p shoal-relay --example load -- \
  --relay-bin "$wrapper" --steps "$pages" --samples 50 >"$out/load.log"
# The load generator kills heaptrack's script, not the relay under it: end
# the relay so that heaptrack writes its profile.
pkill -TERM -f "$PWD/target-size/release/relay" || true
for _ in $(seq 50); do [ -s "$out/relay.zst" ] && ! pgrep -f heaptrack_interpret >/dev/null && break; sleep 0.2; done

heaptrack_print -f "$out/relay.zst" --print-peaks 0 --print-allocators 0 \
  --print-temporary 0 --print-leaks 0 | grep -E 'peak heap|peak RSS'
echo "peak heap consumers (per page = ÷ $pages):"
heaptrack_print -f "$out/relay.zst" --print-peaks 1 --print-allocators 0 \
  --print-temporary 0 --print-leaks 0 --peak-limit 6 --sub-peak-limit 4 |
  grep -E 'consumed over|^\s+(libp2p|tungstenite|yamux|asynchronous_codec|shoal)' |
  grep -v '^\s+at ' | head -60
