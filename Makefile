# shoal — the usual entry points.
#
#   make run     build the wasm peer and the relay (release), start the relay on $(LISTEN)
#   make build   build the wasm peer and the relay (release)
#   make test    lint (rustfmt, clippy -D warnings native and wasm32), cargo test --workspace,
#                the wasm unit tests (wasm-unit), then the end-to-end tests (real relay, headless
#                Chromium), the interop test and the NAT lab (tests/lab/: root only)
#   make lint    only the lint gates
#   make wasm-unit  the peer's browser-glue tests (wasm-bindgen-test in headless Chromium;
#                WASM_UNIT_ARGS="--include-ignored" or a test-name filter)
#   make lab     only the NAT lab tests, against what is built
#   make fuzz    every cargo-fuzz target in fuzz/ for FUZZ_SECONDS each (nightly; installed on demand).
#                `make test` replays the committed fuzz corpora on stable (fuzz/props)
#   make bench   time to first direct peer, sizes, relay memory, then bench-transfer and bench-folders → BENCHMARKS.md
#                (BENCH_ARGS="--runs 10" for more runs)
#   make bench-folders   a folder of 1,000 small files against the same bytes as one file (files/s, MB/s,
#                share and save times) → BENCHMARKS.md (FOLDERS_ARGS="--rounds 5 --profile")
#   make bench-transfer  throughput vs raw RTCDataChannel and WebTorrent, fan-out, tab memory → BENCHMARKS.md
#   make bench-stream  play while downloading: first frame of a 256 MiB video from a share link, and
#                after a seek to 80 % → BENCHMARKS.md (STREAM_ARGS="--runs 5 --mib 256")
#   make bench-profile   where a transfer's CPU goes, by thread and function, shoal beside raw → BENCHMARKS.md
#                (TRANSFER_ARGS="--size-mib 32 --only raw,shoal" for a quick one; ≈10 min at the defaults)
#   make bench-lab  in the NAT lab (root): page load → first direct peer through cone NATs, and
#                direct vs relayed (symmetric NATs) vs coturn TURN throughput → BENCHMARKS.md
#                (LAB_BENCH_ARGS="--size-mib 64 --runs 7 --no-turn")
#
# Variables: FUZZ_SECONDS (time per fuzz target, default 30), FUZZ_ARGS (more libFuzzer flags),
# LISTEN (HTTP address of `make run`), IDENTITY (relay key file),
# RELAY_ARGS (more relay flags, e.g. RELAY_ARGS="--p2p-listen 0.0.0.0:8081").
#
# Tools are installed on demand by scripts/setup.sh (fast when already there).

LISTEN ?= 127.0.0.1:8080
# The relay's key (its PeerId). Kept under target/ so it is never committed.
IDENTITY ?= target/relay.key
RELAY_ARGS ?=

export PATH := $(HOME)/.cargo/bin:$(PATH)

WWW_TEST    := target/www-test

.PHONY: run build test lint wasm-unit fuzz setup-fuzz bench bench-folders bench-stream bench-transfer bench-profile bench-lab bench-load e2e lab wasm wasm-test relay relay-debug setup-build setup-test clean

run: setup-build wasm relay
	target/release/relay --listen $(LISTEN) --identity $(IDENTITY) --www www $(RELAY_ARGS)

build: setup-build wasm relay

# lint first: it fails in seconds, before the long builds.
test: setup-test lint wasm-test relay-debug
	cargo test --workspace
	@# Once more on failure: a fresh-clone run once stalled after 6 of 17 tests until the
	@# runner's 120 s timeout (not reproduced; see README). A test that fails twice is red.
	$(MAKE) --no-print-directory wasm-unit || { echo "wasm-unit failed; running it once more"; $(MAKE) --no-print-directory wasm-unit; }
	$(MAKE) --no-print-directory e2e

# The fuzz targets (fuzz/fuzz_targets, properties in fuzz/props) for a bounded
# time each, from the committed seeds in fuzz/corpus and fuzz/regressions.
FUZZ_SECONDS ?= 30
fuzz: setup-fuzz
	FUZZ_SECONDS=$(FUZZ_SECONDS) bash scripts/fuzz.sh

# The style gates: formatting, then clippy with warnings as errors, natively
# (every crate and target) and for wasm32 (the peer as `make test` builds it,
# feature test-hooks, its browser tests included). Both use the dev profile
# and target/, like `cargo test` and wasm-unit, so they only add a
# metadata-only check of each crate.
lint:
	cargo fmt --all --check
	rustfmt --edition 2021 --check fuzz/fuzz_targets/*.rs
	cargo clippy --workspace --all-targets -- -D warnings
	cargo clippy -p peer-wasm --target wasm32-unknown-unknown --features test-hooks --all-targets -- -D warnings

# The browser glue that cannot be sans-IO (peer-wasm/src/**/tests.rs: data
# channels over a real RTCPeerConnection pair, the WebSocket dial, OPFS), as
# #[wasm_bindgen_test]s in one headless Chromium page driven by chromedriver;
# its flags (loopback ICE) are in peer-wasm/webdriver.json. Dev profile: a
# release test build would share nothing with `make wasm` (measured: all 165
# crates again) and link with LTO.
WASM_UNIT_ENV := CHROMEDRIVER=/usr/bin/chromedriver \
	WASM_BINDGEN_TEST_WEBDRIVER_JSON=$(CURDIR)/peer-wasm/webdriver.json \
	WASM_BINDGEN_TEST_TIMEOUT=120 \
	CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner

wasm-unit:
	$(WASM_UNIT_ENV) cargo test -p peer-wasm --target wasm32-unknown-unknown --features test-hooks --lib -- $(WASM_UNIT_ARGS)

# The end-to-end tests alone, against what is already built; then the
# js-libp2p interop test (a js-libp2p browser node against ours over /webrtc);
# then the NAT lab (browsers behind real NATs in network namespaces: root only,
# skipped with the reason otherwise).
e2e:
	cd tests && node --test --test-concurrency=1 e2e/*.test.mjs
	cd tests/interop && npm test
	$(MAKE) --no-print-directory lab

# Only the NAT lab tests (tests/lab/, scripts/nat-lab.sh), against what is built.
lab:
	cd tests && node --test --test-concurrency=1 lab/*.test.mjs

bench: setup-test wasm relay
	node tests/bench/goals.mjs --clear
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/connect.mjs $(BENCH_ARGS)
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/transfer.mjs $(TRANSFER_ARGS)
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/folders.mjs $(FOLDERS_ARGS)
	node tests/bench/goals.mjs

# Where a transfer's CPU goes, by thread and (main thread) by function, shoal
# beside raw: the page served with a wasm that keeps its name section, built
# into its own target dir so the release build stays as it is.
WWW_PROFILING := target/www-profiling
# Its JS keeps its function names too (whitespace and syntax minified only),
# so that the profile names the glue's and the snippets' functions.
bench-profile: ESBUILD_FLAGS = --minify-whitespace --minify-syntax $(ESBUILD_OUTPUT)
bench-profile: setup-test relay $(WASM_OPT) $(ESBUILD) $(CLIENT_ZIP)
	$(call page,$(WWW_PROFILING),,CARGO_TARGET_DIR=$(CURDIR)/target/profiling CARGO_PROFILE_RELEASE_STRIP=false,--debuginfo)
	SHOAL_WWW=$(WWW_PROFILING) SHOAL_RELAY_BIN=target/release/relay node tests/bench/profile.mjs $(PROFILE_ARGS)

# A folder of 1,000 small files against the same bytes as one file, two browsers.
bench-folders: setup-test wasm relay
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/folders.mjs $(FOLDERS_ARGS)

bench-stream: setup-test wasm relay
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/stream.mjs $(STREAM_ARGS)

bench-transfer: setup-test wasm relay
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/transfer.mjs $(TRANSFER_ARGS)

# Needs root (network namespaces); the release relay, like the other benchmarks.
bench-lab: setup-test wasm relay
	SHOAL_WWW=www SHOAL_RELAY_BIN=target/release/relay node tests/bench/lab.mjs $(LAB_BENCH_ARGS)

# The relay under load (relay/examples/load): idle browser-like peers ramped up in
# steps, from many loopback addresses. The file-descriptor limit is raised as far as
# the hard limit allows (each peer is one socket on each side).
bench-load: relay
	ulimit -n $$(ulimit -Hn) && cargo run --release -p shoal-relay --example load -- --write $(LOAD_ARGS)

setup-build:
	bash scripts/setup.sh build

setup-test:
	bash scripts/setup.sh test

setup-fuzz:
	bash scripts/setup.sh fuzz

# The peer as an npm package (www/pkg: package.json, JS, TypeScript types, wasm)
# built by wasm-pack with the wasm-bindgen CLI setup installed (--mode no-install:
# nothing is downloaded); then .br/.gz copies of the page's assets, which the
# relay serves to browsers that take them.
WASM_PACK := wasm-pack build peer-wasm --target web --release --mode no-install --scope shoal

# Then binaryen's wasm-opt (npm's binaryen 132, installed by scripts/setup.sh
# into .tools/) folds functions whose code is identical, which LLVM does not do
# for wasm: brotli 424,374 -> 421,966 bytes. Only that pass: -Oz made the
# module larger once compressed (453,509 -> 480,376 bytes; 437,289 -> 460,107
# even without its inlining and local passes), and so did, alone,
# inlining-optimizing (+43 KiB), local-cse, simplify-locals, coalesce-locals,
# merge-similar-functions and dae-optimizing; the other passes of -Oz, tried
# one by one, gained under 300 bytes each. strip = true leaves no
# target_features section, hence the features named here (what rustc emits,
# and simd128 for BLAKE3).
WASM_OPT := .tools/npm/node_modules/.bin/wasm-opt
WASM_OPT_FLAGS := --duplicate-function-elimination \
	--enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int \
	--enable-mutable-globals --enable-reference-types --enable-multivalue --enable-simd

# And esbuild (npm, also in .tools/) minifies the JS glue, whose exports keep
# their names (peer_wasm.d.ts describes them): brotli 8,540 -> 6,111 bytes;
# and the peer's own snippets (opfs.js, read.js): 6,161 -> 2,977 bytes. It
# bundles the snippets into the glue, so that the page fetches the peer's JS
# as one file and not a second import level later (pkg/snippets is removed).
ESBUILD := .tools/npm/node_modules/.bin/esbuild
ESBUILD_OUTPUT := --format=esm --log-level=warning --allow-overwrite
ESBUILD_FLAGS := --minify $(ESBUILD_OUTPUT)
# The page's own modules (app.js and ui/) as one file, page.js, which
# index.html loads: ten modules were ten requests on a browser's six
# connections per host over HTTP/1.1, and the import levels waited on each
# other. First direct peer 425 -> 388 ms median (tests/bench/connect.mjs,
# 20 runs each, side by side). The peer stays apart (imported when needed,
# and its size is counted on its own).
PAGE_BUNDLE_FLAGS = $(ESBUILD_FLAGS) --bundle --external:./pkg/peer_wasm.js --external:/pkg/zip.js

# The page's zip writer (Save of a folder where the browser has no directory
# picker): npm's client-zip, bundled by esbuild into pkg/zip.js, which the
# page imports only then (2,449 bytes brotli).
CLIENT_ZIP := .tools/npm/node_modules/client-zip/index.js

$(WASM_OPT) $(ESBUILD) $(CLIENT_ZIP):
	bash scripts/setup.sh build

wasm: $(WASM_OPT) $(ESBUILD) $(CLIENT_ZIP)
	$(WASM_PACK) --out-dir $(CURDIR)/www/pkg
	$(WASM_OPT) $(WASM_OPT_FLAGS) www/pkg/peer_wasm_bg.wasm -o www/pkg/peer_wasm_bg.wasm
	$(ESBUILD) $(ESBUILD_FLAGS) --bundle www/pkg/peer_wasm.js --outfile=www/pkg/peer_wasm.js
	rm -rf www/pkg/snippets
	$(ESBUILD) $(PAGE_BUNDLE_FLAGS) www/app.js --outfile=www/page.js
	$(ESBUILD) $(ESBUILD_FLAGS) --bundle $(CLIENT_ZIP) --outfile=www/pkg/zip.js
	node scripts/compress.mjs www

# The page with a wasm that has the test switches (feature test-hooks), in
# $(WWW_TEST): what the end-to-end tests serve. Release builds never have them.
# Without the default feature `quiet`: its console keeps the info lines that
# the tests print when they fail.
wasm-test: $(WASM_OPT) $(ESBUILD) $(CLIENT_ZIP)
	$(call page,$(WWW_TEST),--no-default-features --features test-hooks,,)

# $(call page,DIR,WASM-PACK FLAGS,ENV,WASM-OPT FLAGS): a copy of the page in DIR
# (no stale compressed copies) with its own build of the peer, through
# wasm-opt and esbuild like `make wasm`, then compressed.
define page
	rm -rf $(1) && mkdir -p $(1)
	cp -r www/. $(1)/ && rm -rf $(1)/pkg
	find $(1) \( -name '*.br' -o -name '*.gz' \) -delete
	$(3) $(WASM_PACK) --out-dir $(CURDIR)/$(1)/pkg $(2)
	$(WASM_OPT) $(WASM_OPT_FLAGS) $(4) $(1)/pkg/peer_wasm_bg.wasm -o $(1)/pkg/peer_wasm_bg.wasm
	$(ESBUILD) $(ESBUILD_FLAGS) --bundle $(1)/pkg/peer_wasm.js --outfile=$(1)/pkg/peer_wasm.js
	rm -rf $(1)/pkg/snippets
	$(ESBUILD) $(PAGE_BUNDLE_FLAGS) $(1)/app.js --outfile=$(1)/page.js
	$(ESBUILD) $(ESBUILD_FLAGS) --bundle $(CLIENT_ZIP) --outfile=$(1)/pkg/zip.js
	node scripts/compress.mjs $(1)
endef

relay:
	cargo build -p shoal-relay --release

relay-debug:
	cargo build -p shoal-relay

clean:
	cargo clean
	rm -rf www/pkg tests/.artifacts
	find www \( -name '*.br' -o -name '*.gz' \) -delete
	rm -f www/page.js
