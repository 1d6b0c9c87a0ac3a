package secret

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"testing"
)

func newKey(t *testing.T) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return base64.StdEncoding.EncodeToString(b)
}

func TestRoundTrip(t *testing.T) {
	kr, err := NewKeyring(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	plain := []byte("learn-admin-password")
	ct, err := kr.Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(ct, plain) {
		t.Fatal("ciphertext contains the plaintext")
	}
	ct2, _ := kr.Encrypt(plain)
	if bytes.Equal(ct, ct2) {
		t.Fatal("two encryptions are equal: nonce not random")
	}
	got, err := kr.Decrypt(ct)
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Decrypt = %q, %v", got, err)
	}
}

func TestRotation(t *testing.T) {
	oldKey, newKeyB64 := newKey(t), newKey(t)
	oldRing, _ := NewKeyring(oldKey)
	oldCT, _ := oldRing.Encrypt([]byte("secret"))

	rotated, err := NewKeyring(newKeyB64 + "," + oldKey)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := rotated.Decrypt(oldCT); err != nil || string(got) != "secret" {
		t.Fatalf("old ciphertext after rotation: %q, %v", got, err)
	}
	if !rotated.NeedsRotation(oldCT) {
		t.Error("old ciphertext not reported as needing rotation")
	}
	newCT, _ := rotated.Encrypt([]byte("secret"))
	if rotated.NeedsRotation(newCT) {
		t.Error("new ciphertext reported as needing rotation")
	}
	// New ciphertexts use the new key: the old ring alone cannot open them.
	if _, err := oldRing.Decrypt(newCT); !errors.Is(err, ErrDecrypt) {
		t.Errorf("old ring opened a new ciphertext: %v", err)
	}
	// Dropping the old key makes old ciphertexts unreadable.
	onlyNew, _ := NewKeyring(newKeyB64)
	if _, err := onlyNew.Decrypt(oldCT); !errors.Is(err, ErrDecrypt) {
		t.Errorf("dropped key still opens: %v", err)
	}
}

func TestTampering(t *testing.T) {
	kr, _ := NewKeyring(newKey(t))
	ct, _ := kr.Encrypt([]byte("token"))
	for i := range ct {
		bad := bytes.Clone(ct)
		bad[i] ^= 0x01
		if _, err := kr.Decrypt(bad); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("flipping byte %d not detected: %v", i, err)
		}
	}
	if _, err := kr.Decrypt(ct[:len(ct)-1]); !errors.Is(err, ErrDecrypt) {
		t.Fatal("truncation not detected")
	}
	if _, err := kr.Decrypt(nil); !errors.Is(err, ErrDecrypt) {
		t.Fatal("empty input not refused")
	}
}

func TestNewKeyringErrors(t *testing.T) {
	for _, in := range []string{"", " , ", "not-base64!!", base64.StdEncoding.EncodeToString([]byte("short"))} {
		if _, err := NewKeyring(in); err == nil {
			t.Errorf("NewKeyring(%q) accepted", in)
		}
	}
}

func TestCookieKeys(t *testing.T) {
	k1, k2 := newKey(t), newKey(t)
	kr, _ := NewKeyring(k1 + "," + k2)
	a := kr.CookieKeys("iframe")
	b := kr.CookieKeys("manager")
	if len(a) != 4 || len(a[0]) != 64 || len(a[1]) != 32 {
		t.Fatalf("unexpected key shapes: %d pairs", len(a)/2)
	}
	if bytes.Equal(a[0], b[0]) {
		t.Fatal("purposes share a key")
	}
}
