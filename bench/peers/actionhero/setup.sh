#!/usr/bin/env bash
# Reproducibly builds the Node.js actionhero 29.3.5 benchmark peer in bench/peers/actionhero/app/
# (gitignored). Committed sources: this script and echo.ts. Idempotent: does nothing when
# app/dist/server.js is already built from the same inputs.
#
# Run the peer (needs a Redis server; bench/run_all.py starts its own on a free port):
#   cd bench/peers/actionhero/app && PORT=8080 REDIS_PORT=6379 LOG_LEVEL=warning node dist/server.js
# Protocol: WebSocket on /primus (also "/"), room "benchroom" and "defaultRoom" exist at boot,
# action "echo" returns {x, message}.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
APP="$HERE/app"
VERSION=29.3.5
STAMP="$APP/.bench-stamp"
want="$VERSION $(sha256sum "$HERE/echo.ts" "$HERE/setup.sh" | sha256sum | cut -c1-16)"
if [ -f "$APP/dist/server.js" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
  echo "actionhero peer already built ($APP)"; exit 0
fi
command -v node >/dev/null || { echo "node is required" >&2; exit 1; }
mkdir -p "$APP"
cd "$APP"
if [ ! -f package.json ]; then
  timeout 600 npx -y "actionhero@$VERSION" generate
fi
# the generated TypeScript build fails without it (checked with 29.3.5)
timeout 600 npm install --no-audit --no-fund --ignore-scripts --save-dev '@types/formidable@^3.4.5'
timeout 600 npm install --no-audit --no-fund --ignore-scripts
cp "$HERE/echo.ts" src/actions/echo.ts
# loopback only
sed -i 's/bindIP: "::",/bindIP: "127.0.0.1",/' src/config/web.ts
grep -q 'bindIP: "127.0.0.1"' src/config/web.ts
# rooms exist at boot (DEFAULT environment, not only test)
node - <<'JS'
const fs = require("fs");
const f = "src/config/api.ts";
let s = fs.readFileSync(f, "utf8");
if (!s.includes("benchroom: {}")) {
  const marker = "// 'secureRoom': {authorized: true},";
  if (!s.includes(marker)) { console.error("api.ts: startingChatRooms marker not found"); process.exit(1); }
  s = s.replace(marker, marker + "\n        defaultRoom: {},\n        benchroom: {},");
  fs.writeFileSync(f, s);
}
JS
# no file logger (log/ grows without bound under load; console at LOG_LEVEL is enough)
node - <<'JS'
const fs = require("fs");
const f = "src/config/logger.ts";
let s = fs.readFileSync(f, "utf8");
const a = "config.general.paths.log.forEach((p: string) => {\n      loggers.push(buildFileLogger(p, process.env.LOG_LEVEL));";
if (s.includes(a)) {
  s = s.replace(a, "config.general.paths.log.forEach((p: string) => {\n      if (process.env.BENCH_NO_FILE_LOG) return;\n      loggers.push(buildFileLogger(p, process.env.LOG_LEVEL));");
  fs.writeFileSync(f, s);
}
JS
timeout 600 npm run build
echo "$want" > "$STAMP"
echo "actionhero peer built: $APP/dist/server.js"
