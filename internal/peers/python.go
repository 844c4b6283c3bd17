package peers

import (
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
)

// pythonModule is what ws_echo.py imports from Python's websockets
// package: the connection class of websockets 10 and later.
const pythonModule = "websockets.legacy.client"

// systemPython is where Debian's python3-websockets installs for; a
// python3 found first on PATH (a pyenv or virtualenv one) may lack it.
const systemPython = "/usr/bin/python3"

var findPython = sync.OnceValue(func() string {
	return firstPython(pythonCandidates(os.Getenv("PATH")))
})

// firstPython returns the first of candidates that imports
// [pythonModule], or "".
func firstPython(candidates []string) string {
	for _, p := range candidates {
		if exec.Command(p, "-c", "import "+pythonModule).Run() == nil {
			return p
		}
	}
	return ""
}

// pythonCandidates lists every python3 on path, in its order, then
// [systemPython], each once.
func pythonCandidates(path string) []string {
	var all []string
	seen := map[string]bool{}
	add := func(p string) {
		if seen[p] {
			return
		}
		seen[p] = true
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() && fi.Mode()&0o111 != 0 {
			all = append(all, p)
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir != "" {
			add(filepath.Join(dir, "python3"))
		}
	}
	add(systemPython)
	return all
}

// Python returns the path of the first python3 that can import Python's
// websockets package (ws_echo.py's peer): every python3 on PATH in turn,
// then the system's. When none can it skips t, or fails it when
// [RequireEnv] is set.
func Python(t testing.TB) string {
	t.Helper()
	p := findPython()
	if p == "" {
		missing(t, "no python3 can import Python's websockets package (./scripts/test runs apt-get install python3-websockets)")
	}
	return p
}
