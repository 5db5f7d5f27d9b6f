#!/usr/bin/env bash
# Installs what building and testing corekv needs on Debian, only what is missing.
# Sourced by run-server.sh and test.sh; safe to run again.
set -euo pipefail

need_apt=()
command -v cc >/dev/null 2>&1 || need_apt+=(build-essential)
command -v pkg-config >/dev/null 2>&1 || need_apt+=(pkg-config)
command -v curl >/dev/null 2>&1 || need_apt+=(curl ca-certificates)
# corekv-ebpf's build.rs compiles the front cache's BPF programs with clang and libbpf's headers.
command -v clang >/dev/null 2>&1 || need_apt+=(clang)
[ -f /usr/include/bpf/bpf_helpers.h ] || need_apt+=(libbpf-dev)
if [ "${COREKV_WITH_REDIS:-0}" = 1 ]; then
    # Differential tests and benchmarks compare against Debian's Redis 7.
    command -v redis-server >/dev/null 2>&1 || need_apt+=(redis-server)
    command -v redis-cli >/dev/null 2>&1 || need_apt+=(redis-tools)
    command -v prlimit >/dev/null 2>&1 || need_apt+=(util-linux)
    # corekv-bench scale draws its PNG chart with DejaVu Sans.
    [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need_apt+=(fonts-dejavu-core)
fi
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi
# A Debian redis-server package starts a system service on 6379; tests use their own ports.

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        curl --proto '=https' --tlsv1.2 -sSf https://sh.rustup.rs | sh -s -- -y --profile minimal
        export PATH="$HOME/.cargo/bin:$PATH"
    fi
fi
