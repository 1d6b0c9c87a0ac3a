// Package remote holds the few rules both API clients (internal/bitrix24 and
// internal/learn) apply the same way when they talk to a remote server: the
// wait between retries, the origin an address is reduced to, and how much of
// a remote message reaches a log line. The simulators do not use it: they
// stay independent of the clients they are tested against.
package remote

import (
	"context"
	"net"
	"strings"
	"time"
)

// Sleep waits d, or less when ctx ends first (then it returns ctx's error),
// so a retry's back-off never outlives the request it serves.
func Sleep(ctx context.Context, d time.Duration) error {
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

// Excerpt is s cut to excerptBytes (never inside a UTF-8 sequence) with "…"
// where it was cut.
func Excerpt(s string) string {
	if len(s) <= excerptBytes {
		return s
	}
	return strings.ToValidUTF8(s[:excerptBytes], "") + "…"
}
