package mailsim

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"io"
	"mime"
	"mime/quotedprintable"
	"net/mail"
	"strings"
)

// Decoded is a message as its reader sees it: the header, the subject with
// its encoded words decoded, and the text body with its transfer encoding
// undone.
type Decoded struct {
	Header  mail.Header
	Subject string
	Body    string
}

// Decode parses the message.
func (m Message) Decode() (Decoded, error) {
	msg, err := mail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return Decoded{}, fmt.Errorf("parse mail: %w", err)
	}
	subject, err := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		return Decoded{}, fmt.Errorf("subject %q: %w", msg.Header.Get("Subject"), err)
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
		return Decoded{}, fmt.Errorf("read mail body: %w", err)
	}
	return Decoded{Header: msg.Header, Subject: subject, Body: string(body)}, nil
}
