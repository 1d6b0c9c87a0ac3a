package bitrix24

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// Profile returns the user who owns the current access token.
func (c *Client) Profile(ctx context.Context) (Profile, error) {
	var p Profile
	err := c.Call(ctx, "profile", nil, &p)
	return p, err
}

// AppInfo returns the app's state on the portal.
func (c *Client) AppInfo(ctx context.Context) (AppInfo, error) {
	var a AppInfo
	err := c.Call(ctx, "app.info", nil, &a)
	return a, err
}

// EventBind binds handler to event, once. A binding that already exists
// counts as success: reinstalls meet it. What Bitrix24 answers a second bind
// is not settled (docs/bitrix24-api.md, "Events"): an error whose code and
// wording are not known, or a success that may add a second binding. So the
// bindings are read first and a bound handler is not bound again, and a
// refused bind counts as success when event.get then lists the binding. A
// failed event.get does not stop the bind: the bind's own answer decides.
func (c *Client) EventBind(ctx context.Context, event, handler string) error {
	if bound, err := c.isBound(ctx, event, handler); err == nil && bound {
		return nil
	}
	err := c.Call(ctx, "event.bind", map[string]any{"event": event, "handler": handler}, nil)
	var ae *APIError
	if !errors.As(err, &ae) {
		return err
	}
	// Refused: perhaps bound meanwhile by another request of the same
	// install, or in the words of the one refusal seen in the wild
	// ("Handler already binded"), which stands when event.get is not
	// answered or lists the handler in another form.
	if bound, gerr := c.isBound(ctx, event, handler); gerr == nil && bound {
		return nil
	}
	if strings.Contains(strings.ToLower(ae.Description), "already bind") {
		return nil
	}
	return err
}

// isBound reports whether event.get lists handler for event.
func (c *Client) isBound(ctx context.Context, event, handler string) (bool, error) {
	hs, err := c.EventGet(ctx)
	if err != nil {
		return false, fmt.Errorf("event.bind %s: %w", event, err)
	}
	for _, h := range hs {
		if strings.EqualFold(h.Event, event) && h.Handler == handler {
			return true, nil
		}
	}
	return false, nil
}

// EventGet lists the app's event bindings.
func (c *Client) EventGet(ctx context.Context) ([]EventHandler, error) {
	var hs []EventHandler
	env, err := c.CallEnvelope(ctx, "event.get", nil)
	if err != nil {
		return nil, err
	}
	if err := decodeList(env.Result, &hs); err != nil {
		return nil, fmt.Errorf("decode event.get: %w", err)
	}
	return hs, nil
}

// followNext lists method one call per page from offset start, as each
// answer's next says, with the parameters params gives for that offset; what
// names the listing in errors. A next that does not advance ends the listing,
// or, when strict, fails it; more than limit rows, or more pages than limit
// rows fill, fail it with ErrListTooLong. each, when set, sees each page
// before it is kept; its error ends the listing.
func followNext[T any](ctx context.Context, c *Client, what, method string, start, limit int, strict bool,
	params func(start int) map[string]any, each func([]T) error) ([]T, error) {
	var out []T
	// The portal's next alone says whether a page follows: empty pages whose
	// next advances add no row, so rows alone would bound nothing.
	maxPages := limit/PageSize + 2
	for pages := 1; ; pages++ {
		if pages > maxPages {
			return nil, fmt.Errorf("%s: more than %d pages: %w", what, maxPages, ErrListTooLong)
		}
		env, err := c.CallEnvelope(ctx, method, params(start))
		if err != nil {
			return nil, fmt.Errorf("%s: %w", what, err)
		}
		var page []T
		if err := decodePage(env.Result, &page); err != nil {
			return nil, fmt.Errorf("%s: decode: %w", what, err)
		}
		if each != nil {
			if err := each(page); err != nil {
				return nil, err
			}
		}
		out = append(out, page...)
		if err := checkTotal(what, len(out), limit); err != nil {
			return nil, err
		}
		if !env.HasNext {
			return out, nil
		}
		if env.Next <= start {
			if !strict {
				return out, nil
			}
			return nil, fmt.Errorf("%s: next %d does not advance past %d", what, env.Next, start)
		}
		start = env.Next
	}
}

// UserField is a custom user field of the portal (user.userfield.list).
type UserField struct {
	Name     string // FIELD_NAME, e.g. UF_USR_1712345
	Type     string // USER_TYPE_ID: string, integer, double, date, datetime, boolean, enumeration, ...
	Multiple bool
	Label    string // EDIT_FORM_LABEL in the asked language; "" when none
	// Options are a list (enumeration) field's choices, text by option ID:
	// user.get sends such a field's value as the ID. nil when Bitrix24 sent
	// no LIST (whether it always does is not documented).
	Options map[string]string
}

// enumOption is one entry of a list field's LIST.
type enumOption struct {
	ID    flexString `json:"ID"`
	Value flexString `json:"VALUE"`
}

func (f *UserField) UnmarshalJSON(b []byte) error {
	var r struct {
		Name     flexString      `json:"FIELD_NAME"`
		Type     flexString      `json:"USER_TYPE_ID"`
		Multiple flexString      `json:"MULTIPLE"`
		Label    json.RawMessage `json:"EDIT_FORM_LABEL"`
		List     json.RawMessage `json:"LIST"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return err
	}
	*f = UserField{Name: string(r.Name), Type: string(r.Type), Multiple: r.Multiple == "Y"}
	// A list, or an object keyed by index as PHP arrays may come; anything
	// else is read as no options rather than failing the field list.
	var opts []enumOption
	if len(r.List) > 0 && decodeList(r.List, &opts) == nil && len(opts) > 0 {
		f.Options = make(map[string]string, len(opts))
		for _, o := range opts {
			if o.ID != "" {
				f.Options[string(o.ID)] = string(o.Value)
			}
		}
	}
	// A string when the LANG filter is given, else an object per language.
	var perLang map[string]string
	if err := json.Unmarshal(r.Label, &f.Label); err != nil && json.Unmarshal(r.Label, &perLang) == nil {
		f.Label = perLang["en"]
		for _, l := range []string{"ru", "en"} {
			if perLang[l] != "" && f.Label == "" {
				f.Label = perLang[l]
			}
		}
	}
	return nil
}

// maxUserFields bounds the custom user fields listed (portals have tens).
const maxUserFields = 5_000

// UserFields lists the portal's custom user fields with labels in lang
// ("ru", "en"). The method needs the user.userfield scope; without it the
// answer is ErrInsufficientScope (docs/bitrix24-api.md, "Custom user fields").
func (c *Client) UserFields(ctx context.Context, lang string) ([]UserField, error) {
	return followNext[UserField](ctx, c, "list user fields", "user.userfield.list", 0, maxUserFields, false, func(start int) map[string]any {
		return map[string]any{"order": map[string]any{"SORT": "ASC"}, "filter": map[string]any{"LANG": lang}, "start": start}
	}, nil)
}
