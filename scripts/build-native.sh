#!/usr/bin/env bash
# Builds build/unicase.so, the SQLite extension providing Anki's `unicase` collation.
# Skips the compile when the library is newer than its sources. CC overrides gcc.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
src="$root/native/unicase"
out="$root/build/unicase.so"
cc="${CC:-gcc}"

if [[ -f "$out" && "$out" -nt "$src/unicase.c" && "$out" -nt "$src/casefold_table.h" &&
  "$out" -nt "${BASH_SOURCE[0]}" ]]; then
  echo "build-native: $out is up to date"
  exit 0
fi

if ! command -v "$cc" >/dev/null; then
  echo "build-native: C compiler '$cc' not found (install gcc or set CC)" >&2
  exit 1
fi
if ! echo '#include <sqlite3ext.h>' | "$cc" -E -x c - >/dev/null 2>&1; then
  echo "build-native: sqlite3ext.h not found; install the libsqlite3-dev package" \
    "(apt-get install libsqlite3-dev)" >&2
  exit 1
fi

mkdir -p "$root/build"
# Compile to a temporary name and rename, so a concurrent loader never sees a partial file.
tmp="$(mktemp "$root/build/.unicase.XXXXXX")"
trap 'rm -f "$tmp"' EXIT
"$cc" -O2 -fPIC -shared -Wall -Wextra -o "$tmp" "$src/unicase.c"
chmod 755 "$tmp"
mv -f "$tmp" "$out"
echo "build-native: built $out"
