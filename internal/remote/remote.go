// Package remote holds the few rules the app applies the same way to what a
// remote party sends: the wait between retries, the origin an address is
// reduced to, and how text from outside is cut before it is stored or logged
// (Cut, Clip, Excerpt). The simulators do not use it: they stay independent
// of the clients they are tested against.
package remote

import (
	"context"
	"net"
	"strings"
	"time"
	"unicode/utf8"
)

// Sleep waits d, or less when ctx ends first (then it returns ctx's error),
// so a retry's back-off never outlives the request it serves. An ended ctx
// is an error even for a wait of 0: the caller's next step is not taken.
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if d <= 0 {
		return nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// Origin is "scheme://host[:port]" without the scheme's default port and
// with an IPv6 host in brackets, so that two spellings of one server compare
// equal. scheme and host must already be in lower case.
func Origin(scheme, host, port string) string {
	if (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	return scheme + "://" + host
}

// excerptBytes bounds a remote message in a log line: enough to recognise
// it, too little for a server to fill the log.
const excerptBytes = 120

// Excerpt is Clip(s, excerptBytes): a remote message as a log line quotes it.
func Excerpt(s string) string { return Clip(s, excerptBytes) }

// Cut is s cut to at most n bytes, never inside a character, with no mark:
// for values kept as data. s is assumed valid UTF-8 (decoded JSON is).
func Cut(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// Clip is s as valid UTF-8 without NUL (a bad byte or a NUL becomes "?"),
// cut to at most n bytes on a character boundary with "…" where it was
// cut: for error texts and log lines. PostgreSQL refuses a text with a bad
// byte or a NUL, so one cut inside a character, or a NUL a server sent,
// would fail the write that stores it.
func Clip(s string, n int) string {
	s = strings.ToValidUTF8(s, "?")
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", "?")
	}
	if len(s) <= n {
		return s
	}
	return Cut(s, n) + "…"
}
