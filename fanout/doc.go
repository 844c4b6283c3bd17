// Package fanout sends streams of WebSocket messages, one per topic, to
// many subscribers, without letting a slow subscriber slow the others or
// grow memory, on one server or across several.
//
// A [Hub] holds its topics. [Hub.Publish] may be called from any goroutine;
// [Hub.Subscribe] makes a [wsconn.Conn] a subscriber of a topic, which from
// then on gets every message published to it, in order.
//
// # One copy per topic
//
// A topic with subscribers keeps its messages in one [buf.Channel], a ring
// bounded in bytes ([Options].Capacity). A message is encoded into the
// ring once, as a [wsconn.PreparedMessage], and every subscriber is a weak
// reader of the ring that hands the shared bytes to its connection
// ([wsconn.Conn.PollWritePrepared]).
//
// That holds for compressed messages too. Subscribers whose connections
// agreed on permessage-deflate without context takeover (the default of
// [wsconn.CompressionOptions], and what browsers accept) share one
// compressed form per level and window: when a message is published, or
// arrives from the bus, the topic compresses it once for each form its
// subscribers use, and puts those forms in the ring beside the message;
// each such subscriber sends its form as it is. A thousand compressing
// subscribers cost one compression per message, not a thousand
// ([Stats].Deflated counts them). Subscribers without compression send
// the message as it is; those with context takeover compress each message
// themselves, their window being their own. The compressed forms count
// against the ring's capacity (a JSON message and its form take about
// 1.4 times the message); a form that would not fit is left out, and the
// subscribers that need it compress the message themselves, as does one
// that subscribed while its message was being compressed.
//
// A subscriber that falls more than
// the ring's capacity behind is overtaken: the messages it missed are
// dropped for it alone, and it is told how many with a small text message
// ([Notice]) before the next one it gets,
//
//	{"type":"missed","frames":12,"bytes":12288}
//
// A subscriber overtaken too often within a window ([Options].KickAfter,
// [Options].BehindWindow) is closed with status 1008 (policy violation).
//
// Subscribers cost no goroutine while they wait: each is a task on an
// [asyncio.Executor], notified by the ring when a message arrives and by
// its connection when it can take more bytes, and polled by at most
// [Options].Workers goroutines that exist only while some subscriber has
// work. Memory is bounded by the ring of each topic that has subscribers,
// plus, per subscriber, its connection's write buffer and the one message
// it is writing.
//
// A [Subscriber] is also its connection's [asyncio.AsyncWriter], with the
// coded close ([Subscriber.ShutdownCode]) and the count of undelivered
// bytes ([Subscriber.Undelivered]) that a Group of package
// github.com/pollws/pollws/shutdown looks for, so that the group drains
// subscribers with status 1001 after what the hub wrote to them.
//
// # Several instances: the bus
//
// Several server instances behind a load balancer share their topics
// through a [Bus] ([Options].Bus): a message published on one instance
// reaches the subscribers of every instance. Without a bus, the default,
// a hub serves its own process and needs no broker. Package
// github.com/pollws/pollws/fanout/natsbus, a module of its own, is a Bus
// over NATS.
//
// Local delivery does not go through the bus: a message published on an
// instance reaches its own subscribers through the ring at once, and
// other instances through the bus. Each hub numbers what it sends on each
// topic, so that a receiving hub keeps each publisher's order and notices
// a message that the bus lost on the way (a broker outage, a slow
// consumer the broker cut off): it counts it ([Stats].BusMissed) and tells
// its subscribers in their next [Notice], as it tells them of an
// overtake. Nothing is lost without being counted.
package fanout
