package handlertest

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"testing/synctest"
)

func TestWaitReturnsWhenHandlersEnd(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var g Group
		release := make(chan struct{})
		h := g.Wrap(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		served := make(chan struct{})
		go func() {
			h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
			close(served)
		}()
		synctest.Wait() // the handler runs
		waited := make(chan struct{})
		go func() {
			g.Wait()
			close(waited)
		}()
		synctest.Wait()
		select {
		case <-waited:
			t.Fatal("Wait returned while a handler ran")
		default:
		}
		close(release)
		<-served
		<-waited
		g.Wait() // nothing runs: returns at once
	})
}
