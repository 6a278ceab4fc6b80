#!/usr/bin/env bash
# A NAT lab in network namespaces (needs root, `ip` and `nft`), for tests/lab/.
#
#   A (10.200.1.2) -- rtr-a (10.200.1.1 | 10.200.0.1, NAT) --+
#                                                             +-- pub: bridge 10.200.0.10 (relay, STUN)
#   B (10.200.2.2) -- rtr-b (10.200.2.1 | 10.200.0.2, NAT) --+
#
# Namespaces are named $SHOAL_LAB_PREFIX-{a,b,rtr-a,rtr-b,pub} (default prefix
# `shoal-lab`); every interface is created directly inside its namespace, so the
# root namespace gets no links, routes or rules. Only 10.200.0.0/16 is used.
# `pub` has no route back to 10.200.1.0/24 or 10.200.2.0/24: only NATed traffic
# reaches it.
#
# Usage:
#   nat-lab.sh up cone|symmetric
#       cone:      masquerade + drop unsolicited new inbound on the public side
#                  (a home router): hole punching with STUN works.
#       symmetric: masquerade fully-random (a new public port per flow): hole
#                  punching fails.
#   nat-lab.sh down                 kill every process in the lab's namespaces, delete them
#   nat-lab.sh udp-block ROUTER     drop all UDP forwarded through ROUTER (rtr-a|rtr-b, or a|b)
#   nat-lab.sh udp-unblock ROUTER   undo udp-block (a no-op when not blocked)
#   nat-lab.sh ns NAME              print the namespace name of NAME (a|b|rtr-a|rtr-b|pub)
#   nat-lab.sh status               list the lab's namespaces and router rules
#
# Run programs inside with: ip netns exec "$(nat-lab.sh ns a)" CMD. Only ever
# target addresses inside the lab, and only from inside its namespaces.
set -euo pipefail

PREFIX="${SHOAL_LAB_PREFIX:-shoal-lab}"
NAMES="a b rtr-a rtr-b pub"
# The table udp-block adds to a router; deleting it is udp-unblock.
BLOCK_TABLE=shoal_udp_block

ns() { printf '%s-%s' "$PREFIX" "$1"; }
exists() { ip netns list 2>/dev/null | awk '{ print $1 }' | grep -qxF "$(ns "$1")"; }

die() {
  echo "nat-lab: $*" >&2
  exit 1
}

need_tools() {
  [ "$(id -u)" -eq 0 ] || die "must run as root"
  command -v ip >/dev/null || die "ip (iproute2) is missing: apt-get install -y iproute2"
  command -v nft >/dev/null || die "nft is missing: apt-get install -y nftables"
}

down() {
  local n pids
  for n in $NAMES; do
    exists "$n" || continue
    # `ip netns del` does not kill processes inside; a process left there keeps
    # the namespace (and its sockets) alive.
    pids=$(ip netns pids "$(ns "$n")" 2>/dev/null || true)
    if [ -n "$pids" ]; then
      # shellcheck disable=SC2086
      kill -TERM $pids 2>/dev/null || true
      for _ in 1 2 3 4 5 6 7 8 9 10; do
        pids=$(ip netns pids "$(ns "$n")" 2>/dev/null || true)
        [ -z "$pids" ] && break
        sleep 0.2
      done
      # shellcheck disable=SC2086
      [ -n "$pids" ] && kill -KILL $pids 2>/dev/null || true
    fi
    ip netns del "$(ns "$n")" 2>/dev/null || true
  done
}

# $1 router (rtr-a), $2 host (a), $3 subnet octet, $4 router's public address, $5 mode
router() {
  local r h pub
  r=$(ns "$1") h=$(ns "$2") pub=$(ns pub)
  # wan0 (router, public side) <-> up-X (pub, on the bridge)
  ip link add wan0 netns "$r" type veth peer name "up-$2" netns "$pub"
  ip -n "$pub" link set "up-$2" master br0 up
  ip -n "$r" addr add "$4/24" dev wan0
  ip -n "$r" link set wan0 up
  # lan0 (router) <-> eth0 (host)
  ip link add lan0 netns "$r" type veth peer name eth0 netns "$h"
  ip -n "$r" addr add "10.200.$3.1/24" dev lan0
  ip -n "$r" link set lan0 up
  ip -n "$h" addr add "10.200.$3.2/24" dev eth0
  ip -n "$h" link set eth0 up
  ip -n "$h" route add default via "10.200.$3.1"
  ip netns exec "$r" sysctl -qw net.ipv4.ip_forward=1

  local masq="masquerade"
  [ "$5" = symmetric ] && masq="masquerade fully-random"
  ip netns exec "$r" nft -f - <<EOF
table ip nat {
  chain post {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 10.200.$3.0/24 oifname "wan0" $masq
  }
}
table ip filter {
  chain input {
    type filter hook input priority filter; policy accept;
    iifname "wan0" ct state new drop
  }
}
EOF
}

up() {
  local mode=$1 n
  case "$mode" in cone | symmetric) ;; *) die "mode must be cone or symmetric, not '$mode'" ;; esac
  down
  for n in $NAMES; do
    ip netns add "$(ns "$n")"
    # IPv4 only: an IPv6 link-local address finishing duplicate address
    # detection a second after the link comes up is an address change, and
    # Chromium answers it by failing the page's loads with
    # ERR_NETWORK_CHANGED.
    ip netns exec "$(ns "$n")" sysctl -qw net.ipv6.conf.all.disable_ipv6=1 \
      net.ipv6.conf.default.disable_ipv6=1 2>/dev/null || true
    ip -n "$(ns "$n")" link set lo up
  done
  local pub
  pub=$(ns pub)
  ip -n "$pub" link add br0 type bridge
  ip -n "$pub" addr add 10.200.0.10/24 dev br0
  ip -n "$pub" link set br0 up
  router rtr-a a 1 10.200.0.1 "$mode"
  router rtr-b b 2 10.200.0.2 "$mode"
  echo "nat-lab: up ($mode): $(for n in $NAMES; do printf '%s ' "$(ns "$n")"; done)"
}

router_ns() {
  case "${1:-}" in
    a | rtr-a | "$(ns rtr-a)") ns rtr-a ;;
    b | rtr-b | "$(ns rtr-b)") ns rtr-b ;;
    *) die "unknown router '${1:-}' (rtr-a or rtr-b)" ;;
  esac
}

udp_block() {
  local r
  r=$(router_ns "$1")
  # Forwarded traffic only (both directions): the router itself keeps working.
  ip netns exec "$r" nft -f - <<EOF
table ip $BLOCK_TABLE {
  chain forward {
    type filter hook forward priority filter - 10; policy accept;
    meta l4proto udp drop
  }
}
EOF
  echo "nat-lab: UDP blocked through $r"
}

udp_unblock() {
  local r
  r=$(router_ns "$1")
  if ip netns exec "$r" nft list table ip "$BLOCK_TABLE" >/dev/null 2>&1; then
    ip netns exec "$r" nft delete table ip "$BLOCK_TABLE"
  fi
  echo "nat-lab: UDP unblocked through $r"
}

status() {
  local n
  for n in $NAMES; do
    if exists "$n"; then
      echo "== $(ns "$n") (pids: $(ip netns pids "$(ns "$n")" | tr '\n' ' '))"
      case "$n" in rtr-*) ip netns exec "$(ns "$n")" nft list ruleset ;; esac
    else
      echo "== $(ns "$n"): absent"
    fi
  done
}

case "${1:-}" in
  up) need_tools; up "${2:-cone}" ;;
  down) need_tools; down; echo "nat-lab: down" ;;
  udp-block) need_tools; udp_block "${2:-}" ;;
  udp-unblock) need_tools; udp_unblock "${2:-}" ;;
  ns) [ -n "${2:-}" ] || die "usage: $0 ns a|b|rtr-a|rtr-b|pub"; ns "$2"; echo ;;
  status) need_tools; status ;;
  *)
    echo "usage: $0 up cone|symmetric | down | udp-block ROUTER | udp-unblock ROUTER | ns NAME | status" >&2
    exit 2
    ;;
esac
