// Writes Learn refused for good.

package syncer

import (
	"time"
)

// A write Learn refused for good is remembered (sync_refusals) with the
// fingerprint of what it stood for, and later runs do not send it again
// until that changes in Bitrix24: an object's values still refused when cut
// short (longvalues.go), the Learn root's managers when Learn refuses
// them or answers and does not keep them (apply_root.go), and another
// department's or a user's links Learn refuses (linksKeyAt). A refusal holds
// for the Learn account that gave it and for refusalTTL: another account, or
// the same one a week later (a limit raised, a field made optional), is
// asked again, at a few writes per object a week. A deactivation Learn
// refused (PartStatus: the account owner, or a user the credentials may not
// deactivate) is reported and then not sent again for refusalTTL while the
// person stays away; their return to the sync (which forgets it,
// Plan.Returned) or an admin's "Sync now" (Options.RetryLeaves) sends it
// sooner. It expires like the others so that a leaver's deactivation refused
// under credentials since replaced is not held back unseen for ever.

// Part is the part of an object's write that Learn refused.
type Part string

const (
	PartValues Part = "values" // its own values: a name, profile fields
	PartLinks  Part = "links"  // a department's or user's links (linksKey, linksKeyAt)
	PartStatus Part = "status" // a user's deactivation; the fingerprint is the Learn user's ID
)

// refusalTTL is how long a refusal is remembered.
const refusalTTL = 7 * 24 * time.Hour

// Refusal is one remembered refusal: the fingerprint of the Bitrix24 values
// the write stood for, and the report's reason.
type Refusal struct {
	Kind        Kind
	B24ID       int64
	Part        Part
	Fingerprint string
	Reason      Reasons
	// Account is the key (AccountOf) of the Learn account that refused; only
	// its runs read the refusal.
	Account string
}

type refusalKey struct {
	kind Kind
	id   int64
	part Part
}

// refused is the reason Learn refused the object's write of part with
// fingerprint fp in an earlier run, if it did: ReasonRemembered, then the
// reasons it was refused for.
func (b *builder) refused(kind Kind, id int64, part Part, fp string) (Reasons, bool) {
	f := b.refusals[refusalKey{kind, id, part}]
	if f == nil || f.Fingerprint != fp {
		return nil, false
	}
	var earlier Reasons
	for _, r := range f.Reason {
		if r.Code != ReasonRemembered {
			earlier = append(earlier, r)
		}
	}
	return because(ReasonRemembered).and(earlier), true
}
