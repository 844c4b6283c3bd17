package peers

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"testing"
)

// RequireEnv is the environment variable that turns a missing peer from a
// skipped test into a failed one. CI sets it.
const RequireEnv = "POLLWS_REQUIRE_PEERS"

// Dir returns the directory of this package, which holds package.json and,
// once scripts/test ran, node_modules.
func Dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Node returns the path of the node binary and the directory whose
// node_modules holds ws and playwright-core. When either is missing it
// skips t, or fails it when [RequireEnv] is set.
func Node(t testing.TB) (node, dir string) {
	t.Helper()
	node, err := exec.LookPath("node")
	if err != nil {
		missing(t, "node is not installed (apt-get install nodejs)")
	}
	dir = Dir()
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "ws", "package.json")); err != nil {
		missing(t, "Node's ws package is not installed (./scripts/test runs npm ci in internal/peers)")
	}
	return node, dir
}

// Chromium returns the path of a Chromium binary. When none is installed
// it skips t, or fails it when [RequireEnv] is set.
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	missing(t, "Chromium is not installed (./scripts/test runs apt-get install chromium)")
	return ""
}

func missing(t testing.TB, why string) {
	t.Helper()
	if os.Getenv(RequireEnv) == "1" {
		t.Fatalf("%s, and %s=1", why, RequireEnv)
	}
	t.Skip(why)
}
