package learn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// Stable codes of a failed connection check (the settings page and logs use them).
const (
	CheckBadURL   = "bad_url"
	CheckNotHTTPS = "not_https"
	// CheckUnreachable covers every address the app cannot or will not talk
	// to: refused by the address rule, a name that does not resolve, a closed
	// port, a timeout. One code and one message, so that the page does not
	// tell a portal admin which internal hosts and ports exist.
	CheckUnreachable    = "unreachable"
	CheckTLS            = "tls"
	CheckBadCredentials = "bad_credentials"
	CheckNoAPIAccess    = "no_api_access"
	CheckNotLearn       = "not_learn"
	CheckServerError    = "server_error"
)

var checkMessages = map[string][2]string{ // code → {en, ru}
	CheckBadURL: {"The iSpring Learn address is not a valid URL. Copy it from the browser's address bar, e.g. https://company.ispringlearn.ru.",
		"Адрес iSpring Learn указан неверно. Скопируйте его из адресной строки браузера, например https://company.ispringlearn.ru."},
	CheckNotHTTPS: {"The iSpring Learn address must start with https://.",
		"Адрес iSpring Learn должен начинаться с https://."},
	CheckUnreachable: {"No iSpring Learn server could be reached at this address. Check that it is the public address of your account (e.g. https://company.ispringlearn.ru) and try again later.",
		"По этому адресу не удалось связаться с сервером iSpring Learn. Проверьте, что это публичный адрес вашего аккаунта (например, https://company.ispringlearn.ru), и повторите попытку позже."},
	CheckTLS: {"The secure (HTTPS) connection to the iSpring Learn server failed: its certificate is not valid for this address.",
		"Не удалось установить защищённое (HTTPS) соединение с сервером iSpring Learn: его сертификат недействителен для этого адреса."},
	CheckBadCredentials: {"iSpring Learn rejected the email (login) or password. Enter the credentials of an iSpring Learn administrator.",
		"iSpring Learn отклонил e-mail (логин) или пароль. Укажите данные администратора iSpring Learn."},
	CheckNoAPIAccess: {"This iSpring Learn user has no access to the REST API. Use an account administrator, and check that your plan includes the API (Business).",
		"У этого пользователя iSpring Learn нет доступа к REST API. Укажите администратора аккаунта и проверьте, что тариф включает API (Business)."},
	CheckNotLearn: {"This address does not look like an iSpring Learn account. Check the address.",
		"По этому адресу не найден аккаунт iSpring Learn. Проверьте адрес."},
	CheckServerError: {"The iSpring Learn server reported an error. Try again later.",
		"Сервер iSpring Learn сообщил об ошибке. Повторите попытку позже."},
}

// CheckError is a failed connection check: a stable Code, a message for the
// admin in Russian or English, and the underlying error for logs.
type CheckError struct {
	Code string
	Err  error
}

func (e *CheckError) Error() string {
	return fmt.Sprintf("learn check %s: %v", e.Code, e.Err)
}

func (e *CheckError) Unwrap() error { return e.Err }

// Message returns the admin-facing text; lang "ru…" gives Russian, anything else English.
func (e *CheckError) Message(lang string) string {
	m, ok := checkMessages[e.Code]
	if !ok {
		m = checkMessages[CheckUnreachable]
	}
	if strings.HasPrefix(strings.ToLower(lang), "ru") {
		return m[1]
	}
	return m[0]
}

// CheckConnection normalises the account URL, then makes one cheap authenticated
// call (the first page of departments, size 1) and checks the answer looks like
// Learn. Any failure is a *CheckError. opts are those of New; the check retries at
// most once and waits at most 20 s per attempt.
func CheckConnection(ctx context.Context, creds Credentials, opts Options) error {
	opts.Retry = RetryPolicy{MaxAttempts: 2, BaseDelay: 300 * time.Millisecond, MaxDelay: time.Second,
		MaxRetryAfter: 2 * time.Second, Timeout: 20 * time.Second}
	c, err := New(creds, opts)
	if err != nil {
		if errors.Is(err, ErrInsecureURL) {
			return &CheckError{Code: CheckNotHTTPS, Err: err}
		}
		return &CheckError{Code: CheckBadURL, Err: err}
	}
	if strings.TrimSpace(creds.Email) == "" || creds.Password == "" {
		return &CheckError{Code: CheckBadCredentials, Err: errors.New("empty email or password")}
	}
	res, err := c.do(ctx, request{method: http.MethodGet, route: "/departments", path: "/departments",
		query: url.Values{"pageSize": {"1"}}})
	if err != nil {
		return &CheckError{Code: classify(err), Err: err}
	}
	var page map[string]json.RawMessage
	if decode("/departments", res.body, &page) != nil {
		return &CheckError{Code: CheckNotLearn, Err: fmt.Errorf("answer is not a department page: %w", ErrUnexpected)}
	}
	var list []json.RawMessage
	if raw, ok := page["departments"]; !ok || json.Unmarshal(raw, &list) != nil {
		return &CheckError{Code: CheckNotLearn, Err: fmt.Errorf("answer has no departments: %w", ErrUnexpected)}
	}
	return nil
}

// classify maps a call failure to a check code.
func classify(err error) string {
	var ae *APIError
	if errors.As(err, &ae) {
		switch {
		case ae.Status == 401:
			return CheckBadCredentials
		case ae.Status == 403:
			return CheckNoAPIAccess
		case ae.Status == 429 || ae.Status >= 500:
			return CheckServerError
		default:
			return CheckNotLearn
		}
	}
	var dnsErr *net.DNSError
	var certInvalid x509.CertificateInvalidError
	var unknownAuth x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verifyErr *tls.CertificateVerificationError
	var recordErr tls.RecordHeaderError
	var netErr net.Error
	switch {
	case isForbidden(err), errors.As(err, &dnsErr):
		return CheckUnreachable
	case errors.Is(err, ErrUnexpected): // an unreadable or over-limit answer
		return CheckNotLearn
	case errors.Is(err, ErrInsecureURL):
		return CheckNotHTTPS
	case errors.As(err, &verifyErr), errors.As(err, &certInvalid), errors.As(err, &unknownAuth),
		errors.As(err, &hostErr), errors.As(err, &recordErr):
		return CheckTLS
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return CheckUnreachable
	case strings.Contains(err.Error(), "redirects"):
		return CheckNotLearn
	default:
		return CheckUnreachable
	}
}
