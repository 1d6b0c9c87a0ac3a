package templates

import "testing"

// The attacker: an activation request whose contact address carries
// mailto headers in its (legal) local part. The console's link must mail
// that one address and add no recipient.
func TestMailtoAddsNoHeaders(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"anna@customer.example":                "mailto:anna@customer.example",
		"a?cc=boss@evil.example@customer.test": "mailto:a%3Fcc=boss@evil.example@customer.test",
		"a&bcc=x@evil.example":                 "mailto:a%26bcc=x@evil.example",
		"100%#x@customer.test":                 "mailto:100%25%23x@customer.test",
	} {
		if got := mgrMailto(in); got != want {
			t.Errorf("mgrMailto(%q) = %q, want %q", in, got, want)
		}
	}
}
