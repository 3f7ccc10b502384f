#!/usr/bin/env bash
# Builds the release binaries and leaves ./model at the repository root, as the original did.
# Portable: the kernels pick AVX-512 or the scalar reference at run time (no target-cpu=native).
set -euo pipefail
cd "$(dirname "$0")"
cargo build --release --workspace --bins
cp -f target/release/model ./model
echo "built ./model and tools/pack (target/release/pack)"
