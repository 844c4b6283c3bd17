// Package shutdown closes WebSocket connections gracefully, one at a time
// or a whole server's worth, waiting on the connections themselves rather
// than on a guessed pause.
//
// [Close] drives one writer's shutdown under a context: every accepted
// byte first, then the writer's own end (close frame, TLS close_notify,
// TCP FIN). If the context ends first it closes hard and says, in an
// [*UndeliveredError], how many bytes the peer will not get; it never
// reports success for bytes that did not leave.
//
// A [Group] tracks a server's live connections. It admits them through a
// [Policy] ([Limits] is the stock one; [Group.Handler] answers a refused
// upgrade with 503 and Retry-After), shuts one down when its lifetime or
// idle time expires, and, on [Group.Drain], stops admitting and shuts
// every connection down with [CodeGoingAway], closing hard only the ones
// still going at the deadline. [GroupOptions].OnDone hears how each
// connection ended, exactly once. [http.Server.Shutdown] does not wait
// for hijacked connections (golang/go#17721); [Group.RegisterOnShutdown]
// makes it start the drain, and [Group.Wait] waits for it:
//
//	g := shutdown.NewGroup(&shutdown.GroupOptions{Policy: shutdown.Limits{MaxConcurrent: 10000}})
//	mux.Handle("/ws", g.Handler(ws))        // in ws: m, err := g.Add(r.Context(), conn, nil); …; m.Done(err)
//	g.RegisterOnShutdown(srv, 5*time.Second)
//	…
//	srv.Shutdown(ctx)
//	report, err := g.Wait(ctx)             // clean=…, forced=…, undelivered=…, gone=…
//
// The drain's [Report] counts apart the connections whose peer had
// already left ([Report].Gone): they are not errors of the drain, and the
// drain logs one summary line, not a line per connection.
//
// # What a writer may offer
//
// Both work with any [asyncio.AsyncWriter], and this package imports no
// WebSocket library. A writer tells them more through these interfaces,
// which they look for with a type assertion:
//
//   - [CodeShutdowner]: ShutdownCode(t, code, reason) is Shutdown whose
//     end carries a status code and a reason, as a WebSocket close frame
//     does. The group sends [CodeGoingAway] at a drain or at the end of a
//     connection's lifetime, and [CodePolicyViolation] when it was idle
//     too long. A writer without it, and every writer given to [Close],
//     which takes no code, is shut down with Shutdown.
//   - [UndeliveredReporter]: Undelivered() int64 counts every byte the
//     writer accepted that its peer will not get, the kernel's send queue
//     included where the writer can read it. It is asked after a hard
//     close.
//   - [BufferedReporter]: Buffered() int, the fallback, counts what the
//     writer's own buffer holds; it is asked just before a hard close,
//     and is a lower bound of what was lost.
//   - [io.Closer]: Close releases the writer after its shutdown, or
//     closes it hard at the deadline.
//
// The group calls these from its own goroutines while the connection's
// handler may be writing, so they must be safe for that.
package shutdown
