package syncer

import (
	"errors"
	"maps"
	"slices"
	"strconv"
	"unicode/utf8"

	"b24learn/internal/learn"
)

// Bitrix24 lets two departments under one parent share a name, and several
// portals' roots share the Learn root; whether Learn refuses a department
// beside a namesake is not known. A department write that sends a name and
// is refused is therefore sent once more under a name of its own: the
// Bitrix24 name with the department's id, or for a portal's root in a
// shared account with the portal's address, "Sales (17)", "Acme
// (acme.bitrix24.com)". The mapping keeps the fingerprint of the Bitrix24
// name, so later runs leave the longer name alone until Bitrix24 renames the
// department.

// nameClash reports whether err may be Learn refusing s's name beside a
// namesake: a refused department write that sent a name (a create, a
// rename) or moved it under another parent, not yet retried.
func (a *applier) nameClash(s Step, err error) bool {
	if s.Kind != KindDepartment || s.Dept == nil || s.Reason.Has(ReasonNameClash) || errors.Is(err, learn.ErrMaybeCreated) {
		// A create refused after its lost answer may have been made
		// (docs/learn-api.md, "Department codes"): not sent again.
		return false
	}
	sent := s.Action == ActionCreate || slices.Contains(s.Changed, "name") || slices.Contains(s.Changed, "parent")
	var invalid *learn.ValidationError
	return sent && (errors.Is(err, learn.ErrDuplicate) || errors.As(err, &invalid))
}

// withUniqueName is s sending its department's name of its own.
func (a *applier) withUniqueName(s Step) Step {
	tag := strconv.FormatInt(s.B24ID, 10)
	if a.layout.Multi && s.Dept.ParentLearnID == a.layout.LearnRootID && a.domain != "" {
		tag = a.domain
	}
	d := *s.Dept
	// The whole name stays within what is sent (longvalues.go): the
	// Bitrix24 name gives way to the tag.
	tag = " (" + tag + ")"
	limit := maxTextRunes
	if s.Reason.Has(ReasonCut) {
		limit = max(utf8.RuneCountInString(d.Name), utf8.RuneCountInString(tag)+1)
	}
	d.Name = fitText(d.Name, max(limit-utf8.RuneCountInString(tag), 1)) + tag
	s.Dept = &d
	s.After = maps.Clone(s.After)
	if s.After == nil {
		s.After = map[string]string{}
	}
	s.After["name"] = d.Name
	if s.Action != ActionCreate && !slices.Contains(s.Changed, "name") {
		s.Changed = append(slices.Clip(s.Changed), "name")
	}
	// A cut value keeps its reason; anything else is replaced.
	if s.Reason.Has(ReasonCut) {
		s.Reason = s.Reason.and(because(ReasonNameClash))
	} else {
		s.Reason = because(ReasonNameClash)
	}
	return s
}
