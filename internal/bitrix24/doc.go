// Package bitrix24 is the app's whole contact surface with Bitrix24 as a client:
// decoders for the iframe POST and event POSTs, the OAuth refresh exchange, and a
// per-portal REST client (envelope decoding, typed errors, batch, leaky-bucket
// limiting, retry on rate limits, one serialised refresh on expired_token, renamed
// portal redirects) with fast full listings of departments and users.
//
// The facts it relies on are in docs/bitrix24-api.md;
// where a fact is UNCONFIRMED the decoders accept every shape seen in the wild and the client sends the
// documented one.
package bitrix24
