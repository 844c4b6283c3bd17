// Package interop tests pollws against clients whose modules the main
// module does not depend on (github.com/coder/websocket), so that users
// of pollws never pull them.
package interop
