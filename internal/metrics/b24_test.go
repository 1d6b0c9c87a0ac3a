package metrics

import "testing"

// Refused Bitrix24 requests are exported by reason.
func TestB24RefusedIsExported(t *testing.T) {
	t.Parallel()
	m := New()
	m.B24Refused.WithLabelValues("unknown_limit").Add(3)
	m.B24Refused.WithLabelValues("malformed").Inc()
	text := scrape(t, m)
	want(t, text, `b24learn_b24_refused_total{reason="unknown_limit"}`, 3)
	want(t, text, `b24learn_b24_refused_total{reason="malformed"}`, 1)
}
