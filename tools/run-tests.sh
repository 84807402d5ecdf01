#!/usr/bin/env bash
# Installs what is missing (Debian 12, as root), builds mailwing twice — optimized with
# warnings as errors, and with ASan+UBSan — and runs the whole test suite in both builds
# (every integration and golden test runs on both reactor backends, io_uring and epoll).
# Ends with one line: "N passed, N failed". .ci/run calls this script.
set -uo pipefail
cd "$(dirname "$0")/.."

packages=(
  g++ meson ninja-build pkg-config python3
  liburing-dev libmimalloc-dev libsimdjson-dev libsodium-dev libssl-dev
  libgtest-dev libgmock-dev libbenchmark-dev
  # clients the tests drive mailwing with (clients this project did not write)
  postfix swaks curl fetchmail
)
export DEBIAN_FRONTEND=noninteractive
# Postfix's package asks a question; "No configuration" leaves any system mail setup alone.
echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null \
  || { echo "apt-get install failed"; echo "0 passed, 1 failed"; exit 1; }

jobs=$(nproc)
status=0
passed=0
failed=0

run_build() {
  local dir=$1; shift
  if ! { [ -d "$dir" ] && meson setup --reconfigure "$dir" "$@" >/dev/null; } &&
     ! meson setup "$dir" "$@" >/dev/null; then
    echo "meson setup $dir failed"; failed=$((failed + 1)); status=1; return
  fi
  if ! ninja -C "$dir" -j "$jobs"; then
    echo "build $dir failed"; failed=$((failed + 1)); status=1; return
  fi
  meson test -C "$dir" --no-rebuild --print-errorlogs --num-processes "$jobs" \
    --suite unit --suite integration --suite golden --suite tools --suite bench-smoke 2>&1 | tee "$dir/test-output.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
  local ok fail timeout unexpected expected
  ok=$(awk '/^Ok:/ {print $2}' "$dir/test-output.txt" | tail -n1)
  expected=$(awk '/^Expected Fail:/ {print $3}' "$dir/test-output.txt" | tail -n1)
  fail=$(awk '/^Fail:/ {print $2}' "$dir/test-output.txt" | tail -n1)
  unexpected=$(awk '/^Unexpected Pass:/ {print $3}' "$dir/test-output.txt" | tail -n1)
  timeout=$(awk '/^Timeout:/ {print $2}' "$dir/test-output.txt" | tail -n1)
  passed=$((passed + ${ok:-0} + ${expected:-0}))
  failed=$((failed + ${fail:-0} + ${unexpected:-0} + ${timeout:-0}))
  if [ -z "$ok" ]; then failed=$((failed + 1)); status=1; fi
}

run_build build-ci --buildtype=debugoptimized -Dwerror=true
run_build build-ci-asan --buildtype=debug -Dwerror=true -Db_sanitize=address,undefined \
  -Db_lundef=false -Dmimalloc=false

echo "$passed passed, $failed failed"
exit $status
