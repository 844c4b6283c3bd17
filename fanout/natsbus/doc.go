// Package natsbus is a [fanout.Bus] over NATS: several server instances,
// each with its own [fanout.Hub], share their topics through one NATS
// broker (or cluster), so that a message published on any instance reaches
// the subscribers of all of them.
//
//	bus, err := natsbus.Connect("nats://127.0.0.1:4222", nil)
//	…
//	defer bus.Close()
//	hub := fanout.New(&fanout.Options{Bus: bus})
//	defer hub.Close()
//
// Each topic is a NATS subject under a prefix ([Options].Prefix), which a
// hub subscribes to while the topic has subscribers on it, so the broker
// sends an instance only the topics it serves. NATS keeps the order of
// each publisher's messages on a subject; the hubs number their messages,
// so a message the broker loses is counted by the hubs that miss it and
// told to their subscribers.
//
// The package is a module of its own, so that an application that does
// not scale out never depends on NATS.
//
// # Nothing silent
//
// What goes wrong between the instances and the broker is counted in
// [Stats] and reported as it happens:
//
//   - An outage: the connection to the broker is lost. [Options].OnError
//     gets an error that wraps [ErrDisconnected], and [Bus.Err] returns it
//     until the connection is back. The bus reconnects by itself, without
//     a limit on the attempts, every [Options].ReconnectWait; once it is
//     back its subscriptions resume and [Options].OnReconnect is called.
//     Messages published meanwhile are held in a bounded buffer
//     ([Options].ReconnectBuffer) and sent on reconnection, or refused
//     with [ErrDisconnected] when it is full or disabled; messages other
//     instances sent meanwhile are lost to this one, and its hub counts
//     them as missed.
//   - A slow consumer: when this instance takes messages more slowly than
//     the broker sends them, so that more than [Options].PendingBytes of a
//     subscription wait, the client drops messages: OnError gets an error
//     that wraps [ErrSlowConsumer], and [Stats].Dropped counts them. A
//     broker that finds a client too slow closes its connection: that is
//     an outage.
package natsbus
