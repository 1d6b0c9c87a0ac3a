package smtptest

import (
	"bytes"
	"encoding/base64"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
	"testing"
)

// Decoded is a message as its reader sees it: the header, the subject with
// its encoded words decoded, and the text body with its transfer encoding
// undone.
type Decoded struct {
	Header  mail.Header
	Subject string
	Body    string
}

// Decode parses the message; one that does not parse fails the test.
func (m Message) Decode(tb testing.TB) Decoded {
	tb.Helper()
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		tb.Fatalf("parse mail: %v", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		tb.Fatalf("subject %q: %v", msg.Header.Get("Subject"), err)
	}
	var r io.Reader = msg.Body
	switch strings.ToLower(msg.Header.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(r)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, r)
	}
	body, err := io.ReadAll(r)
	if err != nil {
		tb.Fatalf("read mail body: %v", err)
	}
	return Decoded{Header: msg.Header, Subject: subject, Body: string(body)}
}
