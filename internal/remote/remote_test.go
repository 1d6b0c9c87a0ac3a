package remote

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestOrigin(t *testing.T) {
	for _, c := range []struct{ scheme, host, port, want string }{
		{"https", "example.com", "", "https://example.com"},
		{"https", "example.com", "443", "https://example.com"},
		{"http", "example.com", "80", "http://example.com"},
		{"http", "example.com", "443", "http://example.com:443"},
		{"https", "example.com", "8443", "https://example.com:8443"},
		{"https", "::1", "", "https://[::1]"},
		{"https", "::1", "8443", "https://[::1]:8443"},
	} {
		if got := Origin(c.scheme, c.host, c.port); got != c.want {
			t.Errorf("Origin(%q, %q, %q) = %q, want %q", c.scheme, c.host, c.port, got, c.want)
		}
	}
}

func TestExcerpt(t *testing.T) {
	if got := Excerpt("short"); got != "short" {
		t.Errorf("short message changed: %q", got)
	}
	// 119 ASCII bytes then a two-byte rune: the cut falls inside it.
	long := strings.Repeat("a", 119) + "é" + strings.Repeat("b", 10)
	if got, want := Excerpt(long), strings.Repeat("a", 119)+"…"; got != want {
		t.Errorf("Excerpt = %q, want %q", got, want)
	}
}

// TestCutAndClip cuts every text at every length: the result is valid
// UTF-8, a prefix of the (repaired) text, within the bound, and as long as
// the bound allows (at most 3 bytes short: a character is at most 4).
func TestCutAndClip(t *testing.T) {
	texts := []string{"", "ascii only", "Иванов Пётр", "日本語のテキスト", "a😀b😀c", "bad \xff\xfe byte", "ж", "nul \x00 byte\x00"}
	for _, s := range texts {
		repaired := strings.ToValidUTF8(s, "?")
		if strings.HasPrefix(s, "nul") {
			// Clip takes out NUL as well, which Cut leaves to its caller.
			if c := Clip(s, len(s)); strings.ContainsRune(c, 0) {
				t.Errorf("Clip(%q) = %q: keeps a NUL", s, c)
			}
			continue
		}
		for n := 0; n <= len(s)+1; n++ {
			for name, got := range map[string]string{"Cut": Cut(repaired, n), "Clip": strings.TrimSuffix(Clip(s, n), "…")} {
				if !utf8.ValidString(got) || !strings.HasPrefix(repaired, got) || len(got) > n || len(got) < min(n, len(repaired))-3 {
					t.Errorf("%s(%q, %d) = %q", name, s, n, got)
				}
			}
			if clipped := Clip(s, n); strings.HasSuffix(clipped, "…") != (len(repaired) > n) {
				t.Errorf("Clip(%q, %d) = %q: the mark must show exactly when it cut", s, n, clipped)
			}
		}
	}
}

func TestSleepEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := Sleep(ctx, time.Hour); !errors.Is(err, context.Canceled) {
		t.Fatalf("Sleep on an ended context = %v", err)
	}
	// No wait at all still refuses an ended context: the caller's next step
	// (a request, a slot) is not taken.
	for range 20 {
		if err := Sleep(ctx, 0); !errors.Is(err, context.Canceled) {
			t.Fatalf("Sleep(ended, 0) = %v", err)
		}
	}
	if err := Sleep(context.Background(), time.Millisecond); err != nil {
		t.Fatalf("Sleep = %v", err)
	}
}
