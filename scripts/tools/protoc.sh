#!/usr/bin/env bash
# Install protoc, the protobuf compiler that `make proto` and the
# generated-code check (proto/regen_test.go) run, from Debian's packages
# (protobuf-compiler). The committed code names the protoc version it was
# generated with; Debian 12 ships that version (3.21.12), so the check
# regenerates byte for byte. The Go plugins are pinned in the Makefile and
# built from the Go module proxy.
#
# Idempotent: nothing is done when protoc is already on PATH. Needs root (as
# on the project's machines and CI) the first time only.
set -euo pipefail

if command -v protoc >/dev/null 2>&1; then
  echo "protoc $(protoc --version | awk '{print $2}') already installed" >&2
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "protoc not found and no apt-get here: install protobuf-compiler 3.21.12 by hand" >&2
  exit 1
fi
SUDO=""
if [ "$(id -u)" != 0 ]; then
  SUDO="sudo"
fi
echo "installing protobuf-compiler from Debian's packages" >&2
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq protobuf-compiler >/dev/null
protoc --version >&2
