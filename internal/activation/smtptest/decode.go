package smtptest

import (
	"testing"

	"b24learn/internal/activation/mailsim"
)

// Decoded is a message as its reader sees it (mailsim.Decoded).
type Decoded = mailsim.Decoded

// Decode parses the message; one that does not parse fails the test.
func (m Message) Decode(tb testing.TB) Decoded {
	tb.Helper()
	d, err := mailsim.Message{From: m.From, To: m.To, Data: m.Data}.Decode()
	if err != nil {
		tb.Fatal(err)
	}
	return d
}
