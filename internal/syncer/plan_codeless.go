// Finding a department whose mapping is lost on a Learn that did not keep its code.

package syncer

import (
	"strconv"
	"strings"
)

// codesSeen is what the portal's mapped departments show of what Learn does
// with the app's codes.
type codesSeen struct {
	// keptLen is the longest code of ours Learn kept whole.
	keptLen int
	// dropped: Learn holds a mapped department of ours without a code.
	dropped bool
}

// seenCodes reads codesSeen off the departments the portal's mapping names
// (the Learn root, which gets no code, aside).
func (b *builder) seenCodes() codesSeen {
	var s codesSeen
	for id, m := range b.deptMap {
		d, ok := b.learnDepts[m.LearnID]
		if !ok || d.ID == b.plan.Layout.LearnRootID {
			continue
		}
		switch code := DepartmentCode(b.o.MemberID, id); d.Code {
		case code:
			s.keptLen = max(s.keptLen, len(code))
		case "":
			s.dropped = true
		}
	}
	return s
}

// codeless finds the Learn department a desired one made in an earlier run
// when neither its mapping nor its code names it: the mapping was lost (a
// run killed between the create and its record, or a create whose answer
// was lost) on a Learn that cut or dropped the code. It is one under the
// wanted parent with the name the app sends (or that name tagged with the
// Bitrix24 id, as a refused namesake is), that no mapping of this portal or
// of another portal of the account names, and whose code can only be ours:
// our code cut (a prefix of it at least as long as the member ID, and not
// another of our departments' whole code), or none when Learn is seen to
// drop codes of that length. It returns how many such departments there
// are; only one is taken (docs/learn-api.md, "Department codes").
func (b *builder) codeless(id int64, want DeptSpec, used map[string]bool) (*LearnDepartment, int) {
	if want.ParentLearnID == "" || want.Code == "" {
		return nil, 0
	}
	if b.seen == nil {
		s := b.seenCodes()
		b.seen = &s
		b.byParent = map[string][]*LearnDepartment{}
		for i := range b.in.Actual.Departments {
			d := &b.in.Actual.Departments[i]
			b.byParent[d.ParentID] = append(b.byParent[d.ParentID], d)
		}
	}
	if b.seen.keptLen >= len(want.Code) {
		return nil, 0 // Learn keeps codes this long: ours would be there
	}
	tagged := want.Name + " (" + strconv.FormatInt(id, 10) + ")"
	var found *LearnDepartment
	n := 0
	for _, d := range b.byParent[want.ParentLearnID] {
		if d.ID == b.plan.Layout.LearnRootID || used[d.ID] || b.in.Actual.OtherDepartments[d.ID] {
			continue
		}
		if _, ok := b.deptMapped[d.ID]; ok {
			continue
		}
		if d.Name != want.Name && d.Name != tagged {
			continue
		}
		if !b.ourCutCode(id, want.Code, d.Code) && (d.Code != "" || !b.sent[id]) {
			continue
		}
		found = d
		n++
	}
	if n != 1 {
		found = nil
	}
	return found, n
}

// ourCutCode reports whether a Learn department's code may be what Learn
// kept of code, the code of desired department id.
func (b *builder) ourCutCode(id int64, code, got string) bool {
	if got == "" {
		return b.seen.dropped
	}
	if len(got) >= len(code) || len(got) < len(b.o.MemberID) || !strings.HasPrefix(code, got) {
		return false
	}
	// "<member>:40" cut to 34 characters is the whole code of 4: that is
	// 4's department unless 4's mapping names another one.
	if m, x, ok := parseCode(got); ok && m == b.o.MemberID && x != id {
		if _, inB24 := b.depts[x]; inB24 {
			mm, mapped := b.deptMap[x]
			if !mapped {
				return false
			}
			if _, there := b.learnDepts[mm.LearnID]; !there {
				return false
			}
		}
	}
	return true
}
