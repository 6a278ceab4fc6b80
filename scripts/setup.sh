#!/usr/bin/env bash
# Installs what building and testing shoal need, and nothing that is already there.
#
#   scripts/setup.sh build   Rust wasm32 target + wasm-bindgen CLI matching Cargo.lock + wasm-pack
#                            (enough for `make run` / `make build`).
#   scripts/setup.sh test    build + Chromium and chromedriver (Debian packages; chromedriver
#                            runs the wasm unit tests) + tests/node_modules,
#                            + iproute2, nftables, curl for the NAT lab (tests/lab/),
#                            coturn for its benchmark (tests/bench/lab.mjs),
#                            nginx, openssl, pebble for the HTTPS tests.
#   scripts/setup.sh fuzz    the nightly toolchain and cargo-fuzz (for `make fuzz`).
#
# Idempotent: every step checks first, so a second run takes about a second.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

mode="${1:-test}"
case "$mode" in
  build | test | fuzz) ;;
  *)
    echo "usage: $0 [build|test|fuzz]" >&2
    exit 2
    ;;
esac

say() { printf 'setup: %s\n' "$*"; }

# npm tools of `make wasm`, pinned, in .tools/npm (the Makefile names the
# same paths): binaryen's wasm-opt and esbuild (which minifies the JS glue),
# and client-zip, which esbuild bundles into the page's zip writer.
BINARYEN=132
ESBUILD=0.28.2
CLIENT_ZIP=2.5.1
NPM_TOOLS=.tools/npm
WASM_OPT=$NPM_TOOLS/node_modules/.bin/wasm-opt
ESBUILD_BIN=$NPM_TOOLS/node_modules/.bin/esbuild

# Run as root directly; otherwise through sudo when there is one.
as_root() {
  if [ "$(id -u)" -eq 0 ]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    echo "setup: need root for: $*" >&2
    return 1
  fi
}

setup_build() {
  if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
    say "adding Rust target wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
  fi

  [ -f Cargo.lock ] || cargo generate-lockfile
  # The CLI must equal the wasm-bindgen crate version exactly, or the
  # generated JS and the wasm disagree.
  local want have
  want="$(awk '/^name = "wasm-bindgen"$/ { getline; gsub(/"/, "", $3); print $3; exit }' Cargo.lock)"
  if [ -z "$want" ]; then
    echo "setup: no wasm-bindgen package in Cargo.lock" >&2
    exit 1
  fi
  have="$(wasm-bindgen --version 2>/dev/null | awk '{ print $2 }' || true)"
  if [ "$have" != "$want" ]; then
    say "installing wasm-bindgen-cli $want (found: ${have:-none}); this takes a few minutes"
    cargo install wasm-bindgen-cli --version "$want" --locked
  fi
  # wasm-pack drives the build; with --mode no-install it uses the wasm-bindgen
  # above and never downloads anything (its own wasm-opt step is off in
  # peer-wasm/Cargo.toml; the Makefile runs the one below).
  if ! wasm-pack --version >/dev/null 2>&1; then
    say "installing wasm-pack; this takes a few minutes"
    cargo install wasm-pack --version 0.15.1 --locked
  fi
  # wasm-opt from npm's binaryen (Debian's 108 breaks the module) and esbuild,
  # in .tools/npm: `make wasm` folds the peer's duplicate functions and
  # minifies its JS glue with them (see the Makefile).
  if [ "$("$WASM_OPT" --version 2>/dev/null || true)" != "wasm-opt version $BINARYEN (version_$BINARYEN)" ] ||
    [ "$("$ESBUILD_BIN" --version 2>/dev/null || true)" != "$ESBUILD" ] ||
    ! grep -q "\"version\": \"$CLIENT_ZIP\"" "$NPM_TOOLS/node_modules/client-zip/package.json" 2>/dev/null; then
    say "installing binaryen $BINARYEN, esbuild $ESBUILD and client-zip $CLIENT_ZIP (npm) into $NPM_TOOLS"
    rm -rf "$NPM_TOOLS"
    mkdir -p "$NPM_TOOLS"
    npm install --prefix "$NPM_TOOLS" --no-save --no-audit --no-fund --no-package-lock \
      "binaryen@$BINARYEN.0.0" "esbuild@$ESBUILD" "client-zip@$CLIENT_ZIP"
  fi
}

# Debian packages, installed only when their command is missing:
# apt_need COMMAND PACKAGE [COMMAND PACKAGE ...]
apt_need() {
  local missing=()
  while [ $# -ge 2 ]; do
    command -v "$1" >/dev/null 2>&1 || [ -x "$1" ] || missing+=("$2")
    shift 2
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]} (Debian packages)"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${missing[@]}"
}

setup_test() {
  # Browsers for the end-to-end tests; chromedriver (same version as
  # chromium: installing it may upgrade chromium) for `make wasm-unit`; nginx
  # and openssl for the HTTPS and reverse-proxy tests; pebble (an ACME test
  # CA) for automatic certificates.
  apt_need /usr/bin/chromium chromium /usr/bin/chromedriver chromium-driver \
    /usr/sbin/nginx nginx openssl openssl pebble pebble
  # Firefox ESR for the cross-browser tests (driven over WebDriver BiDi by puppeteer-core).
  apt_need /usr/bin/firefox-esr firefox-esr
  # ffmpeg makes the WebM videos of the streaming test and benchmark (tests/e2e/stream.test.mjs).
  apt_need /usr/bin/ffmpeg ffmpeg

  # The NAT lab (tests/lab/, scripts/nat-lab.sh): network namespaces
  # (iproute2), NAT (nftables), health checks inside the namespaces (curl).
  # The lab runs only as root; these are installed anyway so a root run finds them.
  apt_need ip iproute2 nft nftables curl curl
  # coturn (turnserver): TURN in the cone lab test and the lab benchmark.
  # Debian starts it as a service where systemd runs, on the STUN port the relay
  # wants; the benchmark runs its own inside a namespace, so a coturn installed
  # here is stopped and disabled (one that was already there is left alone).
  if ! command -v turnserver >/dev/null 2>&1; then
    apt_need turnserver coturn
    if command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; then
      as_root systemctl disable --now coturn >/dev/null 2>&1 || true
    fi
  fi

  npm_install tests
  npm_install tests/interop
}

# npm ci in $1 only when node_modules is missing or package-lock.json changed
# since the last install (its hash is kept inside node_modules).
npm_install() {
  local dir=$1
  local stamp="$dir/node_modules/.shoal-package-lock.sha256"
  local hash
  hash="$(sha256sum "$dir/package-lock.json" | awk '{ print $1 }')"
  if [ ! -d "$dir/node_modules" ] || [ "$(cat "$stamp" 2>/dev/null || true)" != "$hash" ]; then
    say "installing $dir/node_modules (npm ci)"
    # playwright-core never downloads browsers; this only makes sure of it.
    (cd "$dir" && PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm ci --no-audit --no-fund)
    echo "$hash" >"$stamp"
  fi
}

# cargo-fuzz drives libFuzzer and needs nightly Rust (sanitizer flags); only
# `make fuzz` uses them. `cargo test` replays the corpora on stable.
setup_fuzz() {
  if ! rustup toolchain list | grep -q '^nightly'; then
    say "installing the nightly Rust toolchain (for cargo-fuzz)"
    rustup toolchain install nightly --profile minimal
  fi
  if ! cargo fuzz --version >/dev/null 2>&1; then
    say "installing cargo-fuzz; this takes a few minutes"
    cargo install cargo-fuzz --version 0.13.2 --locked
  fi
}

if [ "$mode" = fuzz ]; then
  setup_fuzz
else
  setup_build
  [ "$mode" = test ] && setup_test
fi
say "ok ($mode)"
