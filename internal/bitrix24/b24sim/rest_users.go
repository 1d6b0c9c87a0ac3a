package b24sim

// user.get and user.userfield.list: the rows, the select, the UF_* fields and the filter.

import (
	"math"
	"net/http"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

func hasScope(scopes, want string) bool {
	return slices.Contains(strings.Split(scopes, ","), want)
}

// userFieldList answers user.userfield.list: the portal's UF_USR_* fields,
// the labels as strings in the language filter LANG names, else per
// language, and a list field's options (LIST) unless EnumListOmitted.
func (p *Portal) userFieldList(params map[string]any) (*restOK, *restErr) {
	q := upperKeys(params)
	filter, _ := q["FILTER"].(map[string]any)
	lang := str(upperKeys(filter)["LANG"])
	yn := func(b bool) string {
		if b {
			return "Y"
		}
		return "N"
	}
	return page(len(p.userFields), func(i int) map[string]any {
		f := p.userFields[i]
		row := map[string]any{"ID": strconv.FormatInt(f.ID, 10), "ENTITY_ID": "USER", "FIELD_NAME": f.FieldName,
			"USER_TYPE_ID": f.Type, "XML_ID": nil, "SORT": "100", "MULTIPLE": yn(f.Multiple), "MANDATORY": yn(f.Mandatory),
			"SHOW_FILTER": "N", "SHOW_IN_LIST": "Y", "EDIT_IN_LIST": "Y", "IS_SEARCHABLE": "N", "SETTINGS": map[string]any{}}
		if f.Type == "enumeration" && !p.sim.opts.EnumListOmitted {
			list := make([]map[string]any, len(f.Options))
			for j, o := range f.Options {
				list[j] = map[string]any{"ID": strconv.FormatInt(o.ID, 10), "SORT": strconv.Itoa(100 * (j + 1)),
					"VALUE": o.Value, "DEF": "N", "XML_ID": "opt" + strconv.FormatInt(o.ID, 10)}
			}
			row["LIST"] = list
		}
		for _, k := range []string{"EDIT_FORM_LABEL", "LIST_COLUMN_LABEL", "LIST_FILTER_LABEL"} {
			if lang != "" {
				row[k] = f.Label
			} else {
				row[k] = map[string]any{"en": f.Label, "ru": f.Label}
			}
		}
		return row
	}, params, true, p.sim.unsettled())
}

// userScope is what the token's scopes let user.get and user.search send:
// the portal's own UF_* fields (user.userfield) and the full field set with
// LAST_LOGIN (user; user_basic leaves it out).
type userScope struct {
	uf, full  bool
	unsettled Unsettled
	loc       *time.Location // the portal's time zone; nil is UTC
}

func (sc userScope) zone() *time.Location {
	if sc.loc == nil {
		return time.UTC
	}
	return sc.loc
}

func (p *Portal) userGet(callerID int64, params map[string]any, sc userScope) (*restOK, *restErr) {
	q, terms := userFilter(params)
	// How user.get treats CONFIRM_CODE is not documented; like any field it
	// does not know, the simulator ignores it.
	terms = slices.DeleteFunc(terms, func(t term) bool {
		return t.field == "CONFIRM_CODE" || sc.unsettled.PlainListIgnored && t.op == "" && t.field == "ID" && isList(t.v)
	})
	return p.listUsers(callerID, params, q, terms, sc)
}

// userSearch answers user.search: user.get's listing, plus FIND (a part of
// the name, last name or position) and the CONFIRM_CODE filter as mode
// says (docs/bitrix24-api.md, "Invited users").
func (p *Portal) userSearch(callerID int64, params map[string]any, sc userScope, mode InvitedFilter) (*restOK, *restErr) {
	q, terms := userFilter(params)
	if v, ok := q["FIND"]; ok {
		terms = append(terms, term{"", "FIND", v})
	}
	for i := range terms {
		if terms[i].field != "CONFIRM_CODE" {
			continue
		}
		switch mode {
		case InvitedFilterRefused:
			// The code and text of a refusal are a guess: an ORM error on
			// a field the search does not know.
			return nil, &restErr{http.StatusBadRequest, "ERROR_CORE", "Unknown field definition `CONFIRM_CODE` in filter"}
		case InvitedFilterIgnored:
			terms[i].field = "" // dropped: matches everyone
		}
	}
	return p.listUsers(callerID, params, q, terms, sc)
}

// userFilter reads the upper-cased parameters and the filter terms of a
// user listing: the FILTER array, else the top-level keys.
func userFilter(params map[string]any) (map[string]any, []term) {
	q := upperKeys(params)
	filter := withoutControl(q)
	if f, ok := q["FILTER"].(map[string]any); ok {
		filter = upperKeys(f)
	}
	return q, parseFilter(filter)
}

func (p *Portal) listUsers(callerID int64, params, q map[string]any, terms []term, sc userScope) (*restOK, *restErr) {
	sel := selected(q["SELECT"])
	sortBy, order := strings.ToUpper(str(q["SORT"])), strings.ToUpper(str(q["ORDER"]))
	if sortBy == "" || order == "" { // both are needed, else ID ASC
		sortBy, order = "ID", "ASC"
	}
	adminMode := truthyPHP(q["ADMIN_MODE"])
	caller := p.users[callerID]
	// Without ADMIN_MODE an intranet caller sees only users with a department
	// (extranet group membership is not simulated).
	seesExtranet := adminMode && caller != nil && caller.Admin
	visible := func(u *User) bool { return (!u.external() || seesExtranet) && userMatches(u, terms) }
	var us []*User
	if sortBy == "ID" || (sortBy != "NAME" && sortBy != "LAST_NAME" && sortBy != "EMAIL") {
		// Walk IDs in order; start=-1 needs no count, so stop after one page.
		// The walk starts and ends where the ID bounds allow: a keyset page
		// (>ID, as a large listing pages) then costs its page, not every user
		// before it.
		ids := idRange(p.sortedUserIDs(), terms)
		quick := num(params["start"]) < 0 || num(params["START"]) < 0
		for i := range ids {
			if order == "DESC" {
				i = len(ids) - 1 - i
			}
			if u := p.users[ids[i]]; visible(u) {
				us = append(us, u)
				if quick && len(us) == pageSize {
					break
				}
			}
		}
		return page(len(us), func(i int) map[string]any { return p.withUF(userRow(us[i], sc), us[i], sel, sc.uf) }, params, true, sc.unsettled)
	}
	for _, u := range p.users {
		if visible(u) {
			us = append(us, u)
		}
	}
	key := func(u *User) string {
		switch sortBy {
		case "NAME":
			return u.Name
		case "LAST_NAME":
			return u.LastName
		}
		return u.Email
	}
	sort.Slice(us, func(i, j int) bool {
		a, b := us[i], us[j]
		less := a.ID < b.ID
		if ka, kb := key(a), key(b); ka != kb {
			less = ka < kb
		}
		if order == "DESC" {
			return !less
		}
		return less
	})
	return page(len(us), func(i int) map[string]any { return p.withUF(userRow(us[i], sc), us[i], sel, sc.uf) }, params, true, sc.unsettled)
}

// birthday renders a YYYY-MM-DD birthday as user.get does: an ISO date.
func birthday(d string, loc *time.Location) string {
	t, err := time.ParseInLocation(time.DateOnly, d, loc)
	if err != nil {
		return ""
	}
	return t.Format(isoOffset)
}

// userRow renders a user as user.get does with scope user_basic: ACTIVE is a
// boolean, IDs strings, UF_DEPARTMENT numbers, null fields left out. With
// full (the user scope) a user who signed in has LAST_LOGIN, an ISO
// datetime; CONFIRM_CODE is never sent.
func userRow(u *User, sc userScope) map[string]any {
	row := map[string]any{
		"ID": sc.unsettled.id(u.ID), "ACTIVE": u.Active, "NAME": u.Name, "LAST_NAME": u.LastName,
		"TITLE": "", "PERSONAL_PHONE": "", "WORK_POSITION": u.WorkPosition, "IS_ONLINE": "N", "TIME_ZONE": "",
		"DATE_REGISTER": u.DateRegister.In(sc.zone()).Format(isoOffset), "PERSONAL_BIRTHDAY": birthday(u.Birthday, sc.zone()),
		"UF_EMPLOYMENT_DATE": "", "WORK_PHONE": u.WorkPhone,
	}
	none := sc.unsettled.noValue // a null value: left out unless EmptyValues
	switch {
	case u.SecondName != "":
		row["SECOND_NAME"] = u.SecondName
	case u.ID%2 == 1:
		row["SECOND_NAME"] = "" // an empty middle name comes as "" or (null) not at all
	default:
		none(row, "SECOND_NAME")
	}
	switch {
	case u.Email != "":
		row["EMAIL"] = u.Email
	case u.ID%2 == 0:
		row["EMAIL"] = "" // a missing e-mail comes both ways
	default:
		none(row, "EMAIL")
	}
	if u.PersonalMobile != "" {
		row["PERSONAL_MOBILE"] = u.PersonalMobile
	} else {
		none(row, "PERSONAL_MOBILE")
	}
	if u.PersonalCity != "" {
		row["PERSONAL_CITY"] = u.PersonalCity
	} else {
		none(row, "PERSONAL_CITY")
	}
	if sc.full && !u.LastLogin.IsZero() {
		row["LAST_LOGIN"] = u.LastLogin.In(sc.zone()).Format(isoOffset)
	} else if sc.full {
		none(row, "LAST_LOGIN")
	}
	if u.external() {
		row["USER_TYPE"] = "extranet"
		sc.unsettled.extranetDepartment(row, u.ID)
	} else {
		row["USER_TYPE"] = "employee"
		row["UF_DEPARTMENT"] = sc.unsettled.departments(u.Departments)
	}
	return row
}

// selected lists user.get's select (nil: none given).
func selected(v any) []string {
	list := listOf(v)
	out := make([]string, 0, len(list))
	for _, x := range list {
		out = append(out, strings.ToUpper(str(x)))
	}
	return out
}

// withUF adds the portal's own UF fields the select names (or "UF_*"
// asks for) to row; without the user.userfield scope they are skipped, as
// unknown select entries are.
func (p *Portal) withUF(row map[string]any, u *User, sel []string, ufScope bool) map[string]any {
	if !ufScope || len(sel) == 0 {
		return row
	}
	for _, f := range p.userFields {
		if !slices.Contains(sel, f.FieldName) && !slices.Contains(sel, "UF_*") {
			continue
		}
		v, ok := u.UF[f.FieldName]
		switch {
		case !ok || v == nil:
			continue // null values are left out
		case f.Type == "date" || f.Type == "datetime":
			if d, err := time.ParseInLocation(time.DateOnly, str(v), p.zone()); err == nil {
				v = d.Format(isoOffset)
			}
		}
		row[f.FieldName] = v
	}
	return row
}

func userMatches(u *User, terms []term) bool {
	for _, t := range terms {
		op, field, v := t.op, t.field, t.v
		switch field {
		case "ACTIVE": // implicit "=", PHP truthiness (docs/bitrix24-api.md, "user.get filters")
			if u.Active != truthyPHP(v) {
				return false
			}
			continue
		}
		if isEmpty(v) {
			continue // Bitrix24 skips empty filter values
		}
		switch field {
		case "ID":
			if !cmpInt(op, u.ID, v) {
				return false
			}
		case "USER_TYPE":
			t := "employee"
			if u.external() {
				t = "extranet"
			}
			if !strings.EqualFold(t, str(v)) {
				return false
			}
		case "UF_DEPARTMENT":
			hit := false
			for _, want := range listOf(v) {
				if slices.Contains(u.Departments, num(want)) {
					hit = true
				}
			}
			if hit == (op == "!") {
				return false
			}
		case "CONFIRM_CODE":
			// Invited users have a code, the others none (the codes
			// themselves are not simulated): "!" with an empty-ish value
			// such as "0" finds the invited.
			switch empty := !truthyPHP(v); {
			case op == "!" && empty:
				if !u.Invited {
					return false
				}
			case op == "!": // not this code: everyone
			case empty:
				if u.Invited {
					return false
				}
			default:
				return false
			}
		case "FIND":
			have := strings.ToLower(u.Name + " " + u.LastName + " " + u.WorkPosition)
			if !strings.Contains(have, strings.ToLower(str(v))) {
				return false
			}
		case "EMAIL", "NAME", "LAST_NAME":
			have := map[string]string{"EMAIL": u.Email, "NAME": u.Name, "LAST_NAME": u.LastName}[field]
			if op == "%" {
				if !strings.Contains(strings.ToLower(have), strings.ToLower(str(v))) {
					return false
				}
			} else if !strings.EqualFold(have, str(v)) {
				return false
			}
		}
	}
	return true
}

// sortedUserIDs returns user IDs ascending, cached until users are added (s.mu held).
// idRange narrows sorted IDs to those the terms' >, >=, < and <= on ID leave;
// userMatches still checks every term on what is left.
func idRange(ids []int64, terms []term) []int64 {
	lo, hi := int64(math.MinInt64), int64(math.MaxInt64)
	for _, t := range terms {
		if t.field != "ID" || isEmpty(t.v) || isList(t.v) {
			continue
		}
		switch want := num(t.v); t.op {
		case ">":
			if want == math.MaxInt64 {
				return nil
			}
			lo = max(lo, want+1)
		case ">=":
			lo = max(lo, want)
		case "<":
			if want == math.MinInt64 {
				return nil
			}
			hi = min(hi, want-1)
		case "<=":
			hi = min(hi, want)
		}
	}
	from, _ := slices.BinarySearch(ids, lo)
	to := sort.Search(len(ids), func(i int) bool { return ids[i] > hi })
	if from >= to {
		return nil
	}
	return ids[from:to]
}

func (p *Portal) sortedUserIDs() []int64 {
	if len(p.userIDs) != len(p.users) {
		p.userIDs = p.userIDs[:0]
		for id := range p.users {
			p.userIDs = append(p.userIDs, id)
		}
		slices.Sort(p.userIDs)
	}
	return p.userIDs
}
