// Package simvariant is what the two simulators (internal/bitrix24/b24sim,
// internal/learn/learnsim) share about their unsettled behaviour switches:
// the named choice of them that tests run a client against. It is test
// support; the clients and the app never import it.
package simvariant

// Variant is a named choice of a simulator's Unsettled behaviours (U, the
// simulator's own switches). Each simulator's Variants lists the choices a
// client must pass: the default, each switch flipped on its own (each value
// of the multi-valued ones), and all flipped together.
type Variant[U any] struct {
	Name      string
	Unsettled U
}
