package learn

import (
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"b24learn/internal/netguard"
	"b24learn/internal/remote"
)

// Sentinel errors. An *APIError unwraps to the one matching its status, so
// errors.Is(err, learn.ErrDuplicate) works on anything the client returns.
var (
	ErrBadCredentials   = errors.New("learn: wrong email or password")           // 401 to header auth
	ErrAPIKeyRefused    = errors.New("learn: API key refused")                   // 401 to a client with an API key, see keyRefusal
	ErrNoToken          = errors.New("learn: no access token")                   // the token fetch failed, see tokenError
	ErrNoAPIAccess      = errors.New("learn: no access to the REST API")         // 403 to a read
	ErrPermissionDenied = errors.New("learn: permission denied")                 // 403 to a write, see APIError.Unwrap
	ErrNotFound         = errors.New("learn: not found")                         // 404
	ErrDuplicate        = errors.New("learn: duplicate login or email")          // 409
	ErrRateLimited      = errors.New("learn: rate limited")                      // 429 after the retries
	ErrServer           = errors.New("learn: server error")                      // 5xx after the retries
	ErrUnexpected       = errors.New("learn: unexpected answer")                 // any other status or an unreadable body
	ErrMaybeCreated     = errors.New("learn: create may have been applied")      // see CreateDepartment / CreateUser
	ErrForbiddenAddr    = netguard.ErrForbidden                                  // SSRF rule, see NewHTTPClient
	ErrInsecureURL      = netguard.ErrInsecure                                   // see NormalizeAccountURL and the redirect rule
	ErrInvalidURL       = errors.New("learn: account URL is not a valid URL")    // see NormalizeAccountURL
	ErrTimeout          = errors.New("learn: the server did not answer in time") // see remote.TimeoutError
	// ErrNotAccountAdmin: the credentials' user is not an account
	// administrator (CheckNotAccountAdmin; User.Limited, User.OnlySupervises).
	ErrNotAccountAdmin = errors.New("learn: the sign-in user is not an account administrator")
)

// ValidationError is a 400 answer: Learn refused the request and said why
// (missing required field, unknown department, non-empty department, ...).
// The client also returns one for a request it refuses to send.
type ValidationError struct {
	Message string
	// Remote marks a Message written by the server: it stays out of the
	// error's text (see APIError).
	Remote bool
	Code   int // "code" of the error body, 0 if absent
}

func (e *ValidationError) Error() string {
	if e.Remote {
		return fmt.Sprintf("learn: invalid request (Learn refused the object, code %d)", e.Code)
	}
	return "learn: invalid request: " + e.Message
}

// APIError is a non-success answer from Learn.
//
// Its text holds our words, the status and the code, never what the server
// wrote: error texts reach the admin's status panel and run reports, and a
// server answers what it likes. Message is kept for code and debug logs
// (RemoteMessage), never for display.
type APIError struct {
	Method     string
	Path       string
	Status     int           // HTTP status
	Code       int           // "code" of the error body, 0 if absent
	Message    string        // "message" of the error body, or a short excerpt of the body
	RetryAfter time.Duration // from Retry-After on 429/503, 0 if absent
	// learnShaped: the body is an error in Learn's shape (see learnErrorBody),
	// so the answer came from Learn and not from some web server.
	learnShaped bool
	// keyAuth: the request was the token fetch or carried a token, so a
	// 401 refuses the API key, not an e-mail and password.
	keyAuth bool
	// keyRefused: the token endpoint refused the key, whatever the status
	// (see keyRefusal).
	keyRefused bool
}

func (e *APIError) Error() string {
	meaning := strings.TrimPrefix(e.Unwrap().Error(), "learn: ")
	switch {
	case e.Status == 400 && !e.keyRefused:
		meaning = "invalid request"
	case e.Status == 409 && !strings.HasPrefix(e.Path, "/user"):
		// ErrDuplicate's words are about users; a department's 409 is
		// another conflict (a sibling's name, a refused delete or manager).
		meaning = "refused as a conflict"
	}
	return fmt.Sprintf("learn: %s %s: %s (status %d, code %d)", e.Method, e.Path, meaning, e.Status, e.Code)
}

// MentionedField returns the first of known (profile field names the caller
// sent or the account defines) that Learn's message for err names as a whole
// word, "" for none. The admin is shown that name, which is ours, rather
// than the server's text.
func MentionedField(err error, known []string) string {
	var ae *APIError
	if !errors.As(err, &ae) || ae.Message == "" {
		return ""
	}
	words := strings.FieldsFunc(strings.ToLower(ae.Message), func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9')
	})
	for _, k := range known {
		for _, w := range words {
			if w == strings.ToLower(k) {
				return k
			}
		}
	}
	return ""
}

// RemoteMessage is a bounded excerpt of what Learn wrote about the failure
// inside err, for debug logs only; "" when there is none.
func RemoteMessage(err error) string {
	var ae *APIError
	if !errors.As(err, &ae) {
		return ""
	}
	return remote.Excerpt(ae.Message)
}

// Unwrap maps the status to a sentinel, or to a *ValidationError for 400.
func (e *APIError) Unwrap() error {
	switch {
	case e.keyRefused:
		return ErrAPIKeyRefused
	case e.Status == 400:
		return &ValidationError{Message: e.Message, Remote: true, Code: e.Code}
	case e.Status == 401 && e.keyAuth:
		return ErrAPIKeyRefused
	case e.Status == 401:
		return ErrBadCredentials
	case e.Status == 403 && e.Method != "" && e.Method != "GET":
		// A write refused for the caller's rights over that object (a
		// department administrator's credentials outside its departments):
		// an account without the API refuses the reads before it
		// (docs/learn-api.md, "Whose credentials").
		return ErrPermissionDenied
	case e.Status == 403:
		return ErrNoAPIAccess
	case e.Status == 404:
		return ErrNotFound
	case e.Status == 409:
		return ErrDuplicate
	case e.Status == 429:
		return ErrRateLimited
	case e.Status >= 500:
		return ErrServer
	default:
		return ErrUnexpected
	}
}

// parseErrorBody reads {"code","message"} or <response><code/><message/></response>;
// anything else becomes a short excerpt.
func parseErrorBody(body []byte) (code int, msg string) {
	s := strings.TrimSpace(string(body))
	if s == "" {
		return 0, ""
	}
	var j struct {
		Code    flexInt `json:"code"`
		Message string  `json:"message"`
	}
	if strings.HasPrefix(s, "{") && json.Unmarshal([]byte(s), &j) == nil {
		return int(j.Code), j.Message
	}
	var x struct {
		Code    string `xml:"code"`
		Message string `xml:"message"`
	}
	if strings.HasPrefix(s, "<") && xml.Unmarshal([]byte(s), &x) == nil && (x.Code != "" || x.Message != "") {
		var c flexInt
		_ = c.UnmarshalJSON([]byte(x.Code))
		return int(c), x.Message
	}
	return 0, remote.Clip(s, 200)
}

// maxRemoteErrText bounds the text of an error that quotes an answer.
const maxRemoteErrText = 300

// boundedError is a failure that may quote what the server sent: Go's
// decoders quote the input they fail on (a number literal as long as the
// answer, an XML name with bytes that are not UTF-8), its HTTP transport a
// malformed header line (megabytes of it). Error texts are stored with the
// run, shown on the status panel and logged, so its text is a short excerpt
// in valid UTF-8; Unwrap still gives the failure.
type boundedError struct{ err error }

func (e *boundedError) Error() string {
	return remote.Clip(e.err.Error(), maxRemoteErrText)
}

func (e *boundedError) Unwrap() error { return e.err }

// dropQuery cuts the query from the address a transport failure quotes
// (*url.Error): a lookup's query holds the e-mails and logins it asks for,
// and error texts are logged and stored with the run.
func dropQuery(err error) {
	var ue *url.Error
	if errors.As(err, &ue) {
		if i := strings.IndexByte(ue.URL, '?'); i >= 0 {
			ue.URL = ue.URL[:i]
		}
	}
}
