// Package smtptest runs the mail simulator (mailsim) on loopback for tests:
// plain, STARTTLS or implicit TLS with a certificate the client is given,
// optional AUTH PLAIN, recording every message it accepts, and able to
// refuse service to stand in for an outage.
package smtptest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"net/url"
	"testing"
	"time"

	"b24learn/internal/activation/mailsim"
)

// Message is one accepted message.
type Message struct {
	HELO string // the client's greeting
	From string
	To   []string
	Data []byte
}

// Mode is how clients connect.
type Mode = mailsim.Mode

const (
	Plain    = mailsim.Plain
	StartTLS = mailsim.StartTLS
	TLS      = mailsim.TLS
)

// Server is a running test SMTP server.
type Server struct {
	URL *url.URL
	// ClientTLS trusts the server's self-signed certificate.
	ClientTLS *tls.Config

	sim *mailsim.Server
}

// Start serves on 127.0.0.1 until the test ends. With user set, AUTH PLAIN
// with user/password is required.
func Start(tb testing.TB, mode Mode, user, password string) *Server {
	tb.Helper()
	s := &Server{}
	o := mailsim.Options{Mode: mode, User: user, Password: password, From: "b24learn@test.example"}
	if mode != Plain {
		cert, pool := selfSigned(tb)
		o.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
		s.ClientTLS = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatalf("smtptest: listen: %v", err)
	}
	if s.sim, err = mailsim.Serve(ln, o); err != nil {
		tb.Fatalf("smtptest: %v", err)
	}
	tb.Cleanup(func() { _ = s.sim.Close() })
	s.URL = s.sim.URL
	return s
}

// SetDown makes the server refuse every new session (421) while down.
func (s *Server) SetDown(down bool) { s.sim.SetDown(down) }

// Messages returns the accepted messages.
func (s *Server) Messages() []Message {
	var out []Message
	for _, m := range s.sim.Messages() {
		out = append(out, Message{HELO: m.HELO, From: m.From, To: m.To, Data: m.Data})
	}
	return out
}

// Refused counts sessions refused while down.
func (s *Server) Refused() int { return s.sim.Refused() }

func selfSigned(tb testing.TB) (tls.Certificate, *x509.CertPool) {
	tb.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatalf("smtptest: key: %v", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "smtptest"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(time.Hour),
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:              []string{"localhost"},
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IsCA:                  true,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		tb.Fatalf("smtptest: certificate: %v", err)
	}
	leaf, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(leaf)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, pool
}
