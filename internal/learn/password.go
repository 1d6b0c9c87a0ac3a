package learn

// Whether Learn makes up a password for a user created without one is not
// known (docs/learn-api.md, "Unsettled behaviour"). The client sends none, so
// that the account's own invitation can set it, until a create is refused for
// want of one; that create is sent again with a generated password, and so is
// every later create of the client.

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"errors"
	"strings"
)

// The generated password: long, and with each class of character, so that
// the password policies accounts commonly set accept it. Look-alikes (0/O,
// 1/l/I) are left out in case an admin ever has to read one out.
const (
	passwordLen     = 20
	passwordUpper   = "ABCDEFGHJKLMNPQRSTUVWXYZ"
	passwordLower   = "abcdefghijkmnopqrstuvwxyz"
	passwordDigits  = "23456789"
	passwordSymbols = "!#%*+-=?@_"
)

// newPassword returns a random password of passwordLen characters with at
// least one of each class.
func newPassword() string {
	classes := []string{passwordUpper, passwordLower, passwordDigits, passwordSymbols}
	all := strings.Join(classes, "")
	b := make([]byte, passwordLen)
	for i := range b {
		set := all
		if i < len(classes) {
			set = classes[i]
		}
		b[i] = set[randIndex(len(set))]
	}
	for i := len(b) - 1; i > 0; i-- { // the classes' places must not be fixed
		j := randIndex(i + 1)
		b[i], b[j] = b[j], b[i]
	}
	return string(b)
}

// randIndex is a uniform (to within 2^-58 for the small n used here) index
// below n from crypto/rand, whose Read does not fail: it ends the program
// instead.
func randIndex(n int) int {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return int(binary.LittleEndian.Uint64(b[:]) % uint64(n))
}

// requestWords are the words by which a refusal of u's create may point at
// something of the request other than the password.
func requestWords(u NewUser) []string {
	words := []string{"password", "departmentId", "department", "role", "roleId", "invitationMessage", "sendLoginEmail",
		FieldLogin, FieldEmail, FieldFirstName, FieldLastName, FieldJobTitle, FieldPhone, FieldCountry}
	for name := range u.Fields {
		words = append(words, name)
	}
	return words
}

// passwordRefusal reads err, the refusal of u's create sent without a
// password: maybe when it may be for want of one, named when Learn's
// message says so. A 400 whose message names nothing of the request counts
// as maybe: with terse errors the message is only the status text. One about
// another field (a missing required one, an unknown department) does not.
func passwordRefusal(err error, u NewUser) (maybe, named bool) {
	var ve *ValidationError
	if !errors.As(err, &ve) || !ve.Remote {
		return false, false
	}
	switch MentionedField(err, requestWords(u)) {
	case "password":
		return true, true
	case "":
		return true, false
	}
	return false, false
}

// wantPassword makes every later user create of c send a password.
func (c *Client) wantPassword(ctx context.Context) {
	if c.sendPassword.CompareAndSwap(false, true) {
		c.log.InfoContext(ctx, "learn refuses users without a password: creates now send a generated one")
	}
}

// hidePassword keeps pw out of what Learn wrote back about a create that
// sent it, should it echo the value: that text reaches debug logs.
func hidePassword(err error, pw string) {
	var ae *APIError
	if pw != "" && errors.As(err, &ae) {
		ae.Message = strings.ReplaceAll(ae.Message, pw, "[password]")
	}
}
