// Package handlertest counts the handlers a test's HTTP server runs, so
// that the test can wait for every one of them to return.
package handlertest

import (
	"net/http"
	"sync"
)

// Group counts running handlers. A sync.WaitGroup whose Add runs in the
// handler is not enough: nothing orders that Add with a Wait begun by the
// test's goroutine (the request reached the handler through a socket), and
// the race detector reports it. A Group admits a handler and waits under
// one lock. The zero Group is ready to use.
type Group struct {
	mu   sync.Mutex
	n    int
	idle sync.Cond
}

// Wrap returns h, counted by g while each call runs.
func (g *Group) Wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		g.mu.Lock()
		g.n++
		g.mu.Unlock()
		defer g.done()
		h.ServeHTTP(w, r)
	})
}

func (g *Group) done() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.n--; g.n == 0 && g.idle.L != nil {
		g.idle.Broadcast()
	}
}

// Wait returns once no handler runs.
func (g *Group) Wait() {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.idle.L == nil {
		g.idle.L = &g.mu
	}
	for g.n > 0 {
		g.idle.Wait()
	}
}
