package syncer

import (
	"reflect"
	"testing"
)

// Reasons are stored as JSON and read back as they were; a reason stored as
// English text before reasons had codes reads as one ReasonText.
func TestReasonsStoredAndRead(t *testing.T) {
	t.Parallel()
	rs := because(ReasonCut, "50").and(because(ReasonNameClash)).and(because(ReasonLearn, `Learn said "no"; really`))
	v, err := rs.Value()
	if err != nil {
		t.Fatal(err)
	}
	var back Reasons
	if err := back.Scan(v); err != nil || !reflect.DeepEqual(back, rs) {
		t.Fatalf("read back %v (%v), want %v", back, err, rs)
	}
	for _, old := range []string{"no e-mail in Bitrix24: Learn needs it as the login", `[not json`, `[{"c":`} {
		var got Reasons
		if err := got.Scan(old); err != nil || !reflect.DeepEqual(got, because(ReasonText, old)) {
			t.Errorf("stored text %q read as %v (%v)", old, got, err)
		}
	}
	var none Reasons
	if v, _ := none.Value(); v != "" {
		t.Errorf("no reason stored as %q", v)
	}
	if err := none.Scan(""); err != nil || none != nil {
		t.Errorf("empty column read as %v (%v)", none, err)
	}
	if !rs.Has(ReasonNameClash) || rs.Has(ReasonLicence) || rs.arg(ReasonCut) != "50" {
		t.Errorf("Has/arg on %v", rs)
	}
}
