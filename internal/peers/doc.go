// Package peers holds the independent WebSocket peers that end-to-end tests
// run against pollws: Node's ws package and headless Chromium, installed
// from package.json by scripts/test (npm ci) and found with [Node] and
// [Chromium], and Python's websockets package (ws_echo.py), installed by
// scripts/test (apt-get install python3-websockets) and found with
// [Python].
package peers
