#!/usr/bin/env bash
# Installs the Debian packages smelt's build and tests need. Idempotent: packages already present are
# skipped, and apt is not touched at all when nothing is missing. Run as root (or with sudo).
set -euo pipefail

packages=(
  build-essential pkg-config          # compiler, make, dependency discovery
  libopenblas-dev                     # sgemm and LAPACK (Cholesky for GPTQ)
  libzip-dev                          # the .smelt artifact container
  libprotobuf-c-dev protobuf-c-compiler libonnx-dev   # ONNX bindings generated from onnx.proto
  libjansson-dev                      # JSON: safetensors headers, configs, manifests, reports
  libpcre2-dev                        # the GPT-2 pre-tokenizer regex (Unicode classes)
  libcmocka-dev                       # unit tests
  libssl-dev                          # SHA-256 (libcrypto) for provenance and checksums
  zlib1g-dev                          # gzipped IDX data sets (eval classifier suites)
  jq unzip                            # CLI tests read smelt's --json output and artifact entries
  libxml2-utils                       # xmllint: the eval test checks JUnit XML is well-formed
  dataset-fashion-mnist               # fashion-cnn accuracy test data
  libonnx-testdata                    # ONNX backend conformance tests
)

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

echo "setup: installing ${missing[*]}"
sudo=""
[ "$(id -u)" -eq 0 ] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${missing[@]}"
