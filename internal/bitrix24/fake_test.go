package bitrix24

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

type staticTokens struct{ tok Token }

func (s staticTokens) Token(context.Context) (Token, error) { return s.tok, nil }
func (s staticTokens) Refresh(context.Context, Token) (Token, error) {
	return Token{}, fmt.Errorf("no refresh here")
}

func TestDepartmentsWithoutTotal(t *testing.T) {
	var calls atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		body, _ := io.ReadAll(r.Body)
		start := 0
		if strings.Contains(string(body), `"start":50`) {
			start = 50
		}
		var rows []string
		for i := start; i < min(start+50, 70); i++ {
			rows = append(rows, fmt.Sprintf(`{"ID":"%d","NAME":"D%d"}`, i+1, i+1))
		}
		next := ""
		if start == 0 {
			next = `,"next":50`
		}
		fmt.Fprintf(w, `{"result":[%s]%s,"time":{}}`, strings.Join(rows, ","), next) // no "total"
	}))
	defer srv.Close()
	c := New(Config{Endpoint: srv.URL + "/rest/", Tokens: staticTokens{Token{AccessToken: "a"}}, Limiter: NewLimiter(0, 0)})
	ds, err := c.Departments(context.Background())
	if err != nil || len(ds) != 70 || ds[69].ID != 70 {
		t.Fatalf("got %d departments, %v", len(ds), err)
	}
}

func TestRedirectFormPOST(t *testing.T) {
	var got atomic.Value
	newSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got.Store(r.Method + " " + r.URL.Path + " " + r.PostForm.Get("auth") + " " + r.PostForm.Get("FILTER[ID]"))
		io.WriteString(w, `{"result":true,"time":{}}`)
	}))
	defer newSrv.Close()
	oldSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, newSrv.URL+"/rest/user.get.json", http.StatusMovedPermanently)
	}))
	defer oldSrv.Close()
	c := New(Config{Endpoint: oldSrv.URL + "/rest/", Tokens: staticTokens{Token{AccessToken: "tok"}}, Limiter: NewLimiter(0, 0)})
	if err := c.Call(context.Background(), "user.get", url.Values{"FILTER[ID]": {"7"}}, nil); err != nil {
		t.Fatal(err)
	}
	if g := got.Load(); g != "POST /rest/user.get.json tok 7" {
		t.Errorf("redirected request: %v", g)
	}
	if c.Endpoint() != newSrv.URL+"/rest/" {
		t.Errorf("endpoint %s", c.Endpoint())
	}
}

func TestOAuthDecodeVariants(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		if r.URL.Path != "/oauth/token/" || q.Get("grant_type") != "refresh_token" || q.Get("client_secret") != "topsecret" {
			w.WriteHeader(400)
			io.WriteString(w, `{"error":"invalid_request"}`)
			return
		}
		switch q.Get("refresh_token") {
		case "old-style": // 2020-era answer: scope "app", user_id as a string, no expires
			io.WriteString(w, `{"access_token":"a","refresh_token":"r","expires_in":"3600","scope":"app","user_id":"5","member_id":"m","client_endpoint":"https://x.bitrix24.com/rest/"}`)
		case "gone":
			w.WriteHeader(404)
			io.WriteString(w, `<html>portal not found</html>`)
		default:
			w.WriteHeader(402)
			io.WriteString(w, `{"error":"PAYMENT_REQUIRED","error_description":"Payment required"}`)
		}
	}))
	defer srv.Close()
	o := &OAuth{URL: srv.URL + "/", ClientID: "c", ClientSecret: "topsecret"}
	tok, err := o.Refresh(context.Background(), "old-style")
	if err != nil || tok.UserID != 5 || tok.Scope != "app" || time.Until(tok.Expires) < 59*time.Minute {
		t.Fatalf("%v %+v", err, tok)
	}
	// An OAuth answer without a code keeps only its status: a 404 page of
	// the OAuth server's is not the portal REST's NOT_FOUND.
	var ae *APIError
	if _, err := o.Refresh(context.Background(), "gone"); ErrorCode(err) != "HTTP_404" || !errors.As(err, &ae) || !ae.OAuth {
		t.Errorf("404: %v", err)
	}
	_, err = o.Refresh(context.Background(), "x")
	if !IsPermanentAuthError(err) || ErrorCode(err) != "PAYMENT_REQUIRED" {
		t.Errorf("402: %v", err)
	}
	if strings.Contains(fmt.Sprint(err), "topsecret") {
		t.Errorf("secret leaked into error: %v", err)
	}
}

func TestLimiterPaces(t *testing.T) {
	l := NewLimiter(100, 5)
	start := time.Now()
	for range 15 {
		if err := l.Wait(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	// 5 at once, then 10 more at 100/s: about 100 ms.
	if el := time.Since(start); el < 80*time.Millisecond || el > 2*time.Second {
		t.Errorf("15 waits took %v", el)
	}
	l.Fill()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Millisecond)
	defer cancel()
	if err := l.Wait(ctx); err == nil {
		t.Error("a full bucket let a request through at once")
	}
}
