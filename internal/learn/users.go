package learn

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// ListUsers pages through GET /users/v2 and hands each page to fn, so a caller
// with 100,000 users need not hold them twice. Statuses are the v2 ones (5 shows as 5).
// The listing is bounded by LimitsFor(0); see ListUsersWithin.
func (c *Client) ListUsers(ctx context.Context, f UserFilter, fn func(page []User) error) error {
	return c.ListUsersWithin(ctx, f, LimitsFor(0), fn)
}

// ListUsersWithin is ListUsers under lim; crossing it fails with a *LimitError.
func (c *Client) ListUsersWithin(ctx context.Context, f UserFilter, lim Limits, fn func(page []User) error) error {
	l := &pageList[User]{c: c, what: "users", route: "/users/v2", key: "userProfiles", lim: lim}
	if err := l.run(ctx, f.query(), fn); err != nil {
		return fmt.Errorf("list users: %w", err)
	}
	return nil
}

// AllUsers returns every user matching f.
func (c *Client) AllUsers(ctx context.Context, f UserFilter) ([]User, error) {
	var all []User
	err := c.ListUsers(ctx, f, func(p []User) error {
		all = append(all, p...)
		return nil
	})
	return all, err
}

// FindUserByLogin returns the user whose login equals login (case-insensitively),
// or ErrNotFound.
func (c *Client) FindUserByLogin(ctx context.Context, login string) (User, error) {
	return c.findOne(ctx, UserFilter{Logins: []string{login}}, FieldLogin, login)
}

// FindUserByEmail returns the user whose email equals email (case-insensitively),
// or ErrNotFound.
func (c *Client) FindUserByEmail(ctx context.Context, email string) (User, error) {
	return c.findOne(ctx, UserFilter{Emails: []string{email}}, FieldEmail, email)
}

func (c *Client) findOne(ctx context.Context, f UserFilter, field, value string) (User, error) {
	users, err := c.AllUsers(ctx, f)
	if err != nil {
		return User{}, err
	}
	// Filter again: whether the server's filter is exact is not documented.
	// The value as written comes first: a Learn whose uniqueness keeps
	// letter case may hold another user under IVAN@acme.ru beside
	// ivan@acme.ru (docs/learn-api.md, "Unsettled behaviour").
	for _, u := range users {
		if u.Fields[field] == value {
			return u, nil
		}
	}
	for _, u := range users {
		if strings.EqualFold(u.Fields[field], value) {
			return u, nil
		}
	}
	return User{}, fmt.Errorf("find user by %s: %w", field, ErrNotFound)
}

func (f UserFilter) query() url.Values {
	q := url.Values{}
	for _, v := range f.DepartmentIDs {
		q.Add("departments[]", v)
	}
	for _, v := range f.Logins {
		q.Add("logins[]", v)
	}
	for _, v := range f.Emails {
		q.Add("emails[]", v)
	}
	for _, v := range f.UserIDs {
		q.Add("userIds[]", v)
	}
	return q
}

// GetUser reads one user (GET /user/{id}/v2).
func (c *Client) GetUser(ctx context.Context, id string) (User, error) {
	return getOne[User](ctx, c, "get user", "/user/{id}/v2", "/user/"+url.PathEscape(id)+"/v2")
}

// CreateUser creates a user and returns its ID. u.Fields must hold "login".
//
// Errors: ErrDuplicate (409) when the login or email is taken, *ValidationError
// (400) for a missing required field or an unknown department. When the answer is
// lost (5xx, timeout) the client looks the login up and returns the user it finds
// (the create went through), else sends the create again; a 409 on such a repeat is
// resolved the same way. If the lookup itself fails, or a 400 on such a repeat is
// not resolved by it, the error matches ErrMaybeCreated.
//
// Without u.Password none is sent, unless the account has refused such a create
// before: a create refused for want of a password (see passwordRefusal) is sent
// once more with a generated one, and from then on every create sends one.
func (c *Client) CreateUser(ctx context.Context, u NewUser) (string, error) {
	login := u.Fields[FieldLogin]
	if login == "" {
		return "", fmt.Errorf("create user: %w", &ValidationError{Message: "fields.login is required"})
	}
	if u.Password == "" && c.sendPassword.Load() {
		u.Password = newPassword()
	}
	id, err := c.createUser(ctx, u, login)
	if err == nil || u.Password != "" {
		return id, err
	}
	maybe, named := passwordRefusal(err, u)
	if !maybe {
		return "", err
	}
	if named {
		c.wantPassword(ctx)
	}
	u.Password = newPassword()
	if id, err = c.createUser(ctx, u, login); err != nil {
		return "", err
	}
	c.wantPassword(ctx) // a terse refusal was about the password after all
	return id, nil
}

// createUser sends one create of u, found by login if its answer is lost.
func (c *Client) createUser(ctx context.Context, u NewUser, login string) (string, error) {
	id, err := c.create(ctx, "create user", "/user", u, "userId", func(ctx context.Context) (string, error) {
		found, err := c.FindUserByLogin(ctx, login)
		if errors.Is(err, ErrNotFound) {
			return "", nil
		}
		if err != nil {
			return "", err
		}
		return found.ID, nil
	})
	hidePassword(err, u.Password)
	return id, err
}

// UpdateUser changes a user's fields and/or department (Learn answers 200 or 204).
// u.Fields must hold the user's login, even when only the department changes:
// Learn's docs call it required in every update (docs/learn-api.md, "Unsettled
// behaviour").
func (c *Client) UpdateUser(ctx context.Context, id string, u UserUpdate) error {
	if strings.TrimSpace(u.Fields[FieldLogin]) == "" {
		return fmt.Errorf("update user: %w", &ValidationError{Message: "fields.login is required"})
	}
	return c.post(ctx, "update user", "/user/{id}", "/user/"+url.PathEscape(id), u)
}

// MoveUsers moves users into departmentID with the bulk endpoint.
func (c *Client) MoveUsers(ctx context.Context, departmentID string, userIDs []string) error {
	return c.bulk(ctx, "move users", "/department/{id}/user/move",
		"/department/"+url.PathEscape(departmentID)+"/user/move", userIDs, userIDsBody)
}

// SetUserStatus sets 1 (active), 3 (inactive) or 5 (employment ended).
// Activating may make Learn e-mail the user their sign-in details.
func (c *Client) SetUserStatus(ctx context.Context, id string, status int) error {
	return c.post(ctx, "set user status", "/user/{id}/status", "/user/"+url.PathEscape(id)+"/status",
		map[string]int{"status": status})
}

// DeactivateUsers sets status 3 on many users with POST /users/deactivate.
func (c *Client) DeactivateUsers(ctx context.Context, ids []string) error {
	return c.bulkStatus(ctx, "/users/deactivate", ids)
}

func (c *Client) bulkStatus(ctx context.Context, path string, ids []string) error {
	return c.bulk(ctx, strings.TrimPrefix(path, "/"), path, path, ids, userIDsBody)
}

func userIDsBody(chunk []string) any { return map[string][]string{"userIds": chunk} }

// SetUserSubordination sets a user's own supervisor (sub, required by Learn) and
// functional manager (co, nil to leave unchanged: co is then sent as the
// user has it, see sendLinks: as listed shows it when it holds the link,
// otherwise as a read of the user shows).
func (c *Client) SetUserSubordination(ctx context.Context, id string, sub, co *Subordination, listed *Links) error {
	const what, route = "set user subordination", "/user/{id}/subordination"
	if sub == nil {
		return fmt.Errorf("%s: %w", what, &ValidationError{Message: "subordination is required"})
	}
	path := "/user/" + url.PathEscape(id) + "/subordination"
	if co != nil {
		return c.post(ctx, what, route, path, links(sub, co))
	}
	var cur *Subordination
	if listed != nil {
		cur = listed.CoSubordination
	}
	if cur == nil {
		u, err := c.GetUser(ctx, id)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		cur = u.CoSubordination
	}
	return c.sendLinks(ctx, what, route, path, sub, nil, nil, currentLink(cur, false))
}

// ProfileFields returns the account's profile field definitions; the required ones
// must be sent on create.
func (c *Client) ProfileFields(ctx context.Context) ([]FieldInfo, error) {
	res, err := c.do(ctx, request{method: http.MethodGet, route: "/user/profile/fields", path: "/user/profile/fields"})
	if err != nil {
		return nil, fmt.Errorf("profile fields: %w", err)
	}
	// Count first: a list of empty structs holds nothing, whatever its length.
	var count []struct{}
	if decode("/user/profile/fields", res.body, &count) != nil {
		var wrapped map[string][]struct{}
		if decode("/user/profile/fields", res.body, &wrapped) == nil && len(wrapped) == 1 {
			for _, v := range wrapped {
				count = v
			}
		}
	}
	if len(count) > maxProfileFields {
		return nil, fmt.Errorf("profile fields: %w", &LimitError{Limit: LimitFields, What: "profile fields", Value: maxProfileFields})
	}
	var list []FieldInfo
	if err := decode("/user/profile/fields", res.body, &list); err != nil {
		// Tolerate an object wrapper such as {"fields":[…]} or {"userFieldInfo":[…]}.
		var wrapped map[string][]FieldInfo
		if decode("/user/profile/fields", res.body, &wrapped) != nil || len(wrapped) != 1 {
			return nil, fmt.Errorf("profile fields: %w", err)
		}
		for _, v := range wrapped {
			list = v
		}
	}
	if len(list) > maxProfileFields { // an XML answer, not counted above
		return nil, fmt.Errorf("profile fields: %w", &LimitError{Limit: LimitFields, What: "profile fields", Value: maxProfileFields})
	}
	return list, nil
}

// maxProfileFields bounds the account's profile field definitions: the
// settings page reads them on every view, before activation too, and shows
// a row for each. An account has its standard fields and some custom ones.
const maxProfileFields = 1000
