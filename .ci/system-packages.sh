#!/usr/bin/env bash
# Debian packages Triad needs: bubblewrap for the sandbox's isolation, always; Chromium for the browser
# tests, only for `test` (the default). `make demo` passes `demo` and gets no browser.
set -euo pipefail
mode=${1:-test}
case $mode in demo | test) ;; *) echo "usage: $0 [demo|test]" >&2; exit 2 ;; esac
missing=()
command -v bwrap >/dev/null || missing+=(bubblewrap)
if [[ $mode == test ]]; then command -v chromium >/dev/null || missing+=(chromium); fi
if ((${#missing[@]})); then
  if [[ $(id -u) -ne 0 ]]; then SUDO=sudo; else SUDO=; fi
  echo "installing ${missing[*]} from Debian's packages"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
