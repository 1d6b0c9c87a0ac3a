package manager

import (
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	t.Parallel()
	h, err := HashPassword("correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	if ok, err := CheckPassword(h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, _ := CheckPassword(h, "correct horse batterY"); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := HashPassword("correct horse battery")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if ok, err := CheckPassword(dummyHash, "x"); ok || err != nil {
		t.Fatalf("dummy hash must parse and never match: ok=%v err=%v", ok, err)
	}
	if _, err := CheckPassword("$2a$10$abc", "x"); err == nil {
		t.Fatal("a non-argon2id hash must be refused")
	}
}
