package bitrix24

import (
	"net/url"
	"strings"
	"testing"
	"time"
)

func TestBracketsLinear(t *testing.T) {
	body := strings.Repeat("a[]=1&", 9000)
	v, _ := url.ParseQuery(body)
	start := time.Now()
	tree := ParseBrackets(v)
	if d := time.Since(start); d > 200*time.Millisecond {
		t.Errorf("took %v", d)
	}
	if n := len(tree["a"].(map[string]any)); n != 9000 {
		t.Errorf("got %d", n)
	}
}
