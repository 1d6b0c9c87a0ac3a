package server

import (
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"b24learn/internal/activation"
	"b24learn/internal/apperr"
	"b24learn/internal/i18n"
	"b24learn/internal/store"
	"b24learn/templates"
)

// The console's long lists (requests, portals, audit trail) come a page at
// a time, found by the key of the row next to the page (internal/store's
// keyset paging), so a team with thousands of portals reaches every one.
const (
	consolePageSize = 50
	maxSearchLen    = 100 // characters of a list's search text
	// maxListQuery bounds a list's whole query: the longest search, each
	// character percent-encoded, with a filter and a cursor.
	maxListQuery = 2048
)

// listQuery is what a console list's address asks for. filter is the value
// of the list's filter parameter, search the text to find.
type listQuery struct {
	filter string
	search string
	cursor store.Cursor
}

// parseListQuery reads a console list's address: filterParam names its
// filter ("" for a list without one), the search is q, the page older= or
// newer= (a key store.Key.String wrote). Anything hand-edited out of shape
// is refused in the manager's language, before it reaches the database:
// a repeated parameter, both cursors, a cursor that is not a key, a search
// too long or with characters no domain or address has.
func parseListQuery(raw string, lang i18n.Lang, filterParam string) (listQuery, error) {
	badPage := apperr.New(apperr.EMALFORMED, i18n.T(lang, "mgr.err_bad_page"))
	// Parsed here rather than by URL.Query, which drops a pair it cannot
	// decode and would show another page than the link asked for.
	if len(raw) > maxListQuery {
		return listQuery{}, badPage
	}
	vals, err := url.ParseQuery(raw)
	if err != nil {
		return listQuery{}, badPage
	}
	for _, name := range []string{filterParam, "q", "older", "newer"} {
		if name != "" && len(vals[name]) > 1 {
			return listQuery{}, badPage
		}
	}
	var lq listQuery
	if filterParam != "" {
		lq.filter = vals.Get(filterParam)
	}
	lq.search = strings.TrimSpace(vals.Get("q"))
	if utf8.RuneCountInString(lq.search) > maxSearchLen {
		return listQuery{}, apperr.New(apperr.EMALFORMED, i18n.T(lang, "mgr.err_search_long", maxSearchLen))
	}
	if !utf8.ValidString(lq.search) || strings.ContainsFunc(lq.search, unicode.IsControl) {
		return listQuery{}, apperr.New(apperr.EMALFORMED, i18n.T(lang, "mgr.err_search_bad"))
	}
	older, newer := vals.Has("older"), vals.Has("newer")
	switch {
	case older && newer:
		return listQuery{}, badPage
	case older || newer:
		raw := vals.Get("older")
		if newer {
			raw = vals.Get("newer")
		}
		k, err := store.ParseKey(raw)
		if err != nil {
			return listQuery{}, badPage
		}
		lq.cursor = store.Cursor{Key: k, Newer: newer}
	}
	return lq, nil
}

// listLinks is the address of a list's other pages and filters: path with
// the filter (named filterParam) and the search kept.
type listLinks struct {
	path, filterParam, filter, search string
}

func (l listLinks) href(filter string, c store.Cursor) string {
	var page url.Values
	if !c.IsZero() {
		name := "older"
		if c.Newer {
			name = "newer"
		}
		page = url.Values{name: {c.Key.String()}}
	}
	return templates.ListHref(l.path, l.filterParam, filter, l.search, page)
}

// pager is the page's place and its Newer/Older links.
func pager[T any](l listLinks, p store.Page[T]) templates.ListPager {
	out := templates.ListPager{First: p.First, Last: p.Last(), Total: p.Total, More: p.More, Past: p.Past}
	if !p.Newer.IsZero() {
		out.NewerHref = l.href(l.filter, p.Newer)
	}
	if !p.Older.IsZero() {
		out.OlderHref = l.href(l.filter, p.Older)
	}
	return out
}

// requestsBack is the requests page a saved row's form came from, as its
// hidden field back named it (the page's own query), ending so that more
// parameters can follow. A back that is not one of the list's pages is the
// first page: the save is done, and only the way back is lost.
func requestsBack(back string) string {
	const path = "/manager/requests"
	lq, err := parseListQuery(back, i18n.EN, "status")
	if err != nil {
		return path + "?"
	}
	if _, ok := activation.ParseStatus(lq.filter); !ok {
		lq.filter = ""
	}
	href := listLinks{path: path, filterParam: "status", filter: lq.filter, search: lq.search}.href(lq.filter, lq.cursor)
	if href == path {
		return path + "?"
	}
	return href + "&"
}
