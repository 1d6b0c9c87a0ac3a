// Package secret encrypts secrets at rest and derives the keys of signed sessions.
//
// A Keyring is built from SECRET_KEYS: base64 keys separated by commas, newest
// first. New ciphertexts always use the newest key; any listed key opens old
// ones, so rotation is "prepend a key, re-encrypt (store.Reseal, run by
// migrate), drop the old one once nothing is left on it".
package secret

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ErrDecrypt is returned for a ciphertext that no key opens: tampered,
// truncated, or sealed with a key that is no longer listed.
var ErrDecrypt = errors.New("secret: cannot decrypt")

// version is the first byte of every ciphertext, so the format can change later.
const version = 1

// key is one AES-256 key and its id, the first 4 bytes of its SHA-256, which is
// stored beside the ciphertext to pick the key without trial decryption.
type key struct {
	id   [4]byte
	aead cipher.AEAD
	raw  []byte
}

// Keyring holds the keys, newest first. It is safe for concurrent use.
type Keyring struct {
	keys []key
}

// NewKeyring parses SECRET_KEYS. Each key must decode (standard or URL-safe
// base64) to exactly 32 bytes.
func NewKeyring(keysCSV string) (*Keyring, error) {
	var kr Keyring
	for i, part := range strings.Split(keysCSV, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		raw, err := decodeBase64(part)
		if err != nil {
			return nil, fmt.Errorf("key %d: not base64", i+1)
		}
		if len(raw) != 32 {
			return nil, fmt.Errorf("key %d: %d bytes, want 32 (generate with: openssl rand -base64 32)", i+1, len(raw))
		}
		block, err := aes.NewCipher(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		aead, err := cipher.NewGCM(block)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		sum := sha256.Sum256(raw)
		k := key{aead: aead, raw: raw}
		copy(k.id[:], sum[:4])
		kr.keys = append(kr.keys, k)
	}
	if len(kr.keys) == 0 {
		return nil, errors.New("no keys (want comma-separated base64 keys of 32 bytes, newest first)")
	}
	return &kr, nil
}

func decodeBase64(s string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil {
			return b, nil
		}
	}
	return nil, errors.New("not base64")
}

// Encrypt seals plaintext with the newest key. The result is
// version(1) | key id(4) | nonce(12) | ciphertext+tag.
func (kr *Keyring) Encrypt(plaintext []byte) ([]byte, error) {
	k := kr.keys[0]
	out := make([]byte, 1+4+k.aead.NonceSize(), 1+4+k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	out[0] = version
	copy(out[1:5], k.id[:])
	nonce := out[5:]
	if _, err := rand.Read(nonce); err != nil {
		return nil, fmt.Errorf("nonce: %w", err)
	}
	// The header is authenticated too, so a swapped key id is detected.
	return k.aead.Seal(out, nonce, plaintext, out[:5]), nil
}

// Decrypt opens a ciphertext made by Encrypt with any key of the ring.
func (kr *Keyring) Decrypt(ciphertext []byte) ([]byte, error) {
	if len(ciphertext) < 5 || ciphertext[0] != version {
		return nil, ErrDecrypt
	}
	for _, k := range kr.keys {
		if [4]byte(ciphertext[1:5]) != k.id {
			continue
		}
		ns := k.aead.NonceSize()
		if len(ciphertext) < 5+ns+k.aead.Overhead() {
			return nil, ErrDecrypt
		}
		plain, err := k.aead.Open(nil, ciphertext[5:5+ns], ciphertext[5+ns:], ciphertext[:5])
		if err != nil {
			return nil, ErrDecrypt
		}
		return plain, nil
	}
	return nil, ErrDecrypt
}

// EncryptString and DecryptString are conveniences for text secrets; an empty
// string stays empty (nil), so "no secret" needs no ciphertext.
func (kr *Keyring) EncryptString(s string) ([]byte, error) {
	if s == "" {
		return nil, nil
	}
	return kr.Encrypt([]byte(s))
}

// DecryptString is the inverse of EncryptString.
func (kr *Keyring) DecryptString(b []byte) (string, error) {
	if len(b) == 0 {
		return "", nil
	}
	p, err := kr.Decrypt(b)
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// NeedsRotation reports whether a ciphertext was sealed with an older key.
func (kr *Keyring) NeedsRotation(ciphertext []byte) bool {
	return len(ciphertext) >= 5 && [4]byte(ciphertext[1:5]) != kr.keys[0].id
}

// CookieKeys derives securecookie hash and block key pairs for a purpose
// ("iframe-session", "manager-session"), one pair per key, newest first, so
// sessions signed before a rotation stay valid until they expire.
func (kr *Keyring) CookieKeys(purpose string) [][]byte {
	pairs := make([][]byte, 0, 2*len(kr.keys))
	for _, k := range kr.keys {
		hash, err := hkdf.Key(sha256.New, k.raw, nil, "b24learn cookie hash "+purpose, 64)
		if err != nil {
			panic(err) // only for impossible lengths
		}
		block, err := hkdf.Key(sha256.New, k.raw, nil, "b24learn cookie block "+purpose, 32)
		if err != nil {
			panic(err)
		}
		pairs = append(pairs, hash, block)
	}
	return pairs
}
