// Package shutdown closes WebSocket connections gracefully, one at a time
// or a whole server's worth, waiting on the connections themselves rather
// than on a guessed pause.
//
// [Close] drives one writer's shutdown under a context: every accepted
// byte first, then the writer's own end (close frame, TLS close_notify,
// TCP FIN). If the context ends first it closes hard and says, in an
// [*UndeliveredError], how many bytes did not leave; it never reports
// success for bytes that did not.
//
// A [Group] tracks a server's live connections. It admits them through a
// [Policy] ([Limits] is the stock one; [Group.Handler] answers a refused
// upgrade with 503 and Retry-After), shuts one down when its lifetime or
// idle time expires, and, on [Group.Drain], stops admitting and shuts
// every connection down with close 1001, closing hard only the ones still
// going at the deadline. [GroupOptions].OnDone hears how each connection
// ended, exactly once. [http.Server.Shutdown] does not wait for hijacked
// connections (golang/go#17721); [Group.RegisterOnShutdown] makes it
// start the drain, and [Group.Wait] waits for it:
//
//	g := shutdown.NewGroup(&shutdown.GroupOptions{Policy: shutdown.Limits{MaxConcurrent: 10000}})
//	mux.Handle("/ws", g.Handler(ws))        // in ws: m, err := g.Add(r.Context(), conn, nil); …; m.Done(err)
//	g.RegisterOnShutdown(srv, 5*time.Second)
//	…
//	srv.Shutdown(ctx)
//	report, err := g.Wait(ctx)             // clean=…, forced=…, undelivered=…
//
// Both work with any [asyncio.AsyncWriter]; a writer that has a
// ShutdownWith method (wsconn.Conn, wsconn.GorillaWriter) is sent the
// close code the group chose, and one that reports Undelivered() int64
// has its undelivered bytes counted.
package shutdown
