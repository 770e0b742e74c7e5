// Package shared is the wire contract between rsgo-controller and rsgo-agent.
//
// Its subpackages hold the message types, the framing, the join-token format
// and the protocol version. It imports no Docker, Fiber or Badger code so that
// both binaries can depend on it without pulling in each other's world.
package shared
