#!/usr/bin/env bash
# Builds the Go gateway client used by test/integration/go-gateway.test.ts: grpc-go (Debian's packages, GOPATH
# mode, no network but Debian's archive) calling smartflow.notification.Notification as SmartFlow's gateway does.
#
#   scripts/go-gateway.sh [build]   install what is missing, generate, build; prints the binary's path
#
# Debian packages: golang-go, golang-google-grpc-dev, golang-google-protobuf-dev, golang-google-genproto-dev,
# protobuf-compiler, golang-goprotobuf-dev (protoc-gen-go, old API). apt-get runs only when one is missing.
# Go code is generated from the ORIGINAL proto (test/fixtures/original/notification.proto) into
# .cache/go-gateway/ and rebuilt when the proto, the Go source, this script or the Go toolchain changes.
#
# Exit codes: 0 built (path on stdout); 3 the packages cannot be had here (the message says why; the test
# skips); anything else is a real failure. GO_GATEWAY_UNAVAILABLE=1 simulates the exit 3 path.
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cache="$root/.cache/go-gateway"
proto="$root/test/fixtures/original/notification.proto"
sources=("$root"/test/go-gateway/*.go)
packages=(golang-go golang-google-grpc-dev golang-google-protobuf-dev golang-google-genproto-dev
  protobuf-compiler golang-goprotobuf-dev)
UNAVAILABLE=3

log() { printf 'go-gateway.sh: %s\n' "$*" >&2; }
unavailable() { log "unavailable: $*"; exit "$UNAVAILABLE"; }

missing_packages() {
  local p
  for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q '^install ok installed$' || echo "$p"
  done
}

ensure_packages() {
  if [[ "${GO_GATEWAY_UNAVAILABLE:-}" == 1 ]]; then unavailable "GO_GATEWAY_UNAVAILABLE=1 (simulated)"; fi
  command -v dpkg-query >/dev/null || unavailable "not a Debian system (no dpkg-query); needs ${packages[*]}"
  local missing; mapfile -t missing < <(missing_packages)
  (( ${#missing[@]} == 0 )) && return 0
  command -v apt-get >/dev/null || unavailable "apt-get not found; install ${missing[*]}"
  local sudo=()
  if (( EUID != 0 )); then
    if command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo=(sudo -n)
    else unavailable "not root and no password-less sudo; install ${missing[*]}"; fi
  fi
  local apt=("${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=300 -y -q)
  log "installing ${missing[*]} with apt-get"
  if ! "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2; then
    log "apt-get install failed; updating the package lists and trying again"
    "${apt[@]}" update >&2 || unavailable "apt-get update failed; cannot install ${missing[*]}"
    "${apt[@]}" install --no-install-recommends "${missing[@]}" >&2 ||
      unavailable "apt-get cannot install ${missing[*]}"
  fi
  mapfile -t missing < <(missing_packages)
  (( ${#missing[@]} == 0 )) || unavailable "still missing after apt-get: ${missing[*]}"
}

build() {
  ensure_packages
  mkdir -p "$cache"
  exec 9>"$cache/.lock"
  flock 9 # one build at a time per worktree
  local go=/usr/lib/go/bin/go
  [[ -x "$go" ]] || go=$(command -v go)
  local key
  key=$(cat "$proto" "${sources[@]}" "${BASH_SOURCE[0]}" <("$go" version) <(protoc --version) | sha256sum | cut -c1-16)
  local out="$cache/$key"
  local bin="$out/bin/go-gateway"
  if [[ -x "$bin" ]]; then echo "$bin"; return 0; fi

  log "generating Go code from $(basename "$proto") and building the client into $out"
  local src="$out.tmp/gopath/src/smartflow"
  rm -rf "$out.tmp" && mkdir -p "$src/notificationpb" "$src/gateway" "$out.tmp/bin"
  # protoc-gen-go 1.3 (old API, package smartflow_notification); the proto has no go_package, so the file
  # is written straight into the GOPATH folder that main.go imports as "smartflow/notificationpb".
  protoc --plugin=protoc-gen-go=/usr/bin/protoc-gen-go -I "$(dirname "$proto")" \
    --go_out="$src/notificationpb" "$(basename "$proto")"
  cp "${sources[@]}" "$src/gateway/"
  (
    cd "$src/gateway"
    GO111MODULE=off GOPATH="$out.tmp/gopath:/usr/share/gocode" GOCACHE="$cache/go-build" GOPROXY=off \
      GOFLAGS= CGO_ENABLED=0 "$go" build -o "$out.tmp/bin/go-gateway" .
  )
  # Keep only this build; the key changes with the proto, the source, this script and the toolchain.
  find "$cache" -mindepth 1 -maxdepth 1 -type d ! -name go-build ! -name "$key.tmp" -exec rm -rf {} +
  mv "$out.tmp" "$out"
  echo "$bin"
}

case "${1:-build}" in
  build) build ;;
  *) sed -n '2,13p' "$0"; exit 2 ;;
esac
