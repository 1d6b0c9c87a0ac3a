package activation

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
)

// A lead carries the admin's name, e-mail and phone: a webhook answering
// over https with a redirect to plain http must not get them sent in clear.
func TestCRMRefusesARedirectToPlainHTTP(t *testing.T) {
	t.Parallel()
	var clear atomic.Int32
	plain := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		clear.Add(1)
		_, _ = w.Write([]byte(`{"result": 7}`))
	}))
	defer plain.Close()
	tls := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, plain.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer tls.Close()
	u, err := url.Parse(tls.URL + "/rest/1/code/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewCRM(u, tls.Client()).AddLead(context.Background(), Lead{Title: "t", Name: "n", Email: []Field{{Value: "a@b.example", ValueType: "WORK"}}})
	if err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("AddLead = %v, want the downgrade refused", err)
	}
	if n := clear.Load(); n != 0 {
		t.Fatalf("the lead was sent over plain http %d times", n)
	}
}

// The webhook's error text lands in the console's delivery error and the
// job's errors: a huge one is cut.
func TestCRMErrorTextIsBounded(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusBadRequest)
		_, _ = w.Write([]byte(`{"error": "` + strings.Repeat("E", 5000) + `", "error_description": "` + strings.Repeat("d", 500000) + `"}`))
	}))
	defer srv.Close()
	u, err := url.Parse(srv.URL + "/rest/1/code/")
	if err != nil {
		t.Fatal(err)
	}
	_, err = NewCRM(u, nil).AddLead(context.Background(), Lead{Title: "t", Name: "n"})
	if err == nil {
		t.Fatal("a 400 answer was taken")
	}
	if n := len(err.Error()); n > 500 {
		t.Fatalf("error is %d bytes long", n)
	}
}
