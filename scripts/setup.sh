#!/usr/bin/env bash
# Installs what building and testing shoal need, and nothing that is already there.
#
#   scripts/setup.sh build   Rust wasm32 target + wasm-bindgen CLI matching Cargo.lock
#                            (enough for `make run` / `make build`).
#   scripts/setup.sh test    build + Chromium (Debian package) + tests/node_modules,
#                            + iproute2, nftables, curl, coturn for the NAT lab (tests/lab/).
#
# Idempotent: every step checks first, so a second run takes about a second.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export PATH="${CARGO_HOME:-$HOME/.cargo}/bin:$PATH"

mode="${1:-test}"
case "$mode" in
  build | test) ;;
  *)
    echo "usage: $0 [build|test]" >&2
    exit 2
    ;;
esac

say() { printf 'setup: %s\n' "$*"; }

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
}

setup_test() {
  if [ ! -x /usr/bin/chromium ]; then
    say "installing Chromium (Debian package)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y chromium
  fi

  # The NAT lab (tests/lab/, scripts/nat-lab.sh): network namespaces (iproute2),
  # NAT (nftables), health checks inside the namespaces (curl) and, until the
  # relay has its own, a STUN server (coturn). The lab runs only as root; these
  # are installed anyway so that a root run finds them.
  local pkgs=()
  command -v ip >/dev/null || pkgs+=(iproute2)
  command -v nft >/dev/null || pkgs+=(nftables)
  command -v curl >/dev/null || pkgs+=(curl)
  command -v turnserver >/dev/null || pkgs+=(coturn)
  if [ "${#pkgs[@]}" -gt 0 ]; then
    say "installing ${pkgs[*]} (Debian packages, for the NAT lab)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get update
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y "${pkgs[@]}"
    # Debian starts coturn as a system service where systemd runs; the lab
    # starts its own inside a namespace and needs none on the host.
    if [[ " ${pkgs[*]} " == *" coturn "* ]] && command -v systemctl >/dev/null && [ -d /run/systemd/system ]; then
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

setup_build
[ "$mode" = test ] && setup_test
say "ok ($mode)"
