#!/usr/bin/env bash
# Regenerates src/generated/*.ts from schema/*.capnp with the capnp-es code generator.
#
# The generated code is committed, so building and testing need neither this script nor its
# tools. Run it after changing a schema, then rebuild and run the tests (the byte vectors in
# PROTOCOL.md fail loudly if the encoding moved):
#
#   packages/wire/scripts/generate.sh
#
# Needs the C++ `capnp` tool (Debian: `apt-get install -y capnproto`, 0.9.2 works) and a
# TypeScript the generator can load: capnp-es uses the TypeScript compiler API, which TS 7 (the
# repo's compiler) no longer exposes. So the generator runs from its own directory with
# capnp-es@0.0.16 and typescript@5.9 (created on first use; override with CAPGEN_DIR).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
capgen="${CAPGEN_DIR:-${TMPDIR:-/tmp}/veritydb-capgen}"

if ! command -v capnp >/dev/null; then
  echo "generate.sh: the 'capnp' tool is missing (apt-get install -y capnproto)" >&2
  exit 1
fi
if [ ! -x "$capgen/node_modules/.bin/capnp-es" ]; then
  mkdir -p "$capgen"
  (cd "$capgen" && npm init -y >/dev/null && npm install --no-audit --no-fund capnp-es@0.0.16 typescript@5.9)
fi

cd "$here"
find src/generated -name '*.ts' -delete
"$capgen/node_modules/.bin/capnp-es" schema/*.capnp -ots:src/generated --src-prefix=schema
echo "generate.sh: regenerated $(ls src/generated/*.ts | wc -l) files in src/generated"
