package manager

import (
	"context"
	"strings"
	"testing"
)

func TestPassword(t *testing.T) {
	t.Parallel()
	ctx, hs := context.Background(), DefaultHasher()
	h, err := hs.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	if ok, err := hs.Check(ctx, h, "correct horse battery"); !ok || err != nil {
		t.Fatalf("right password: ok=%v err=%v", ok, err)
	}
	if ok, _ := hs.Check(ctx, h, "correct horse batterY"); ok {
		t.Fatal("wrong password accepted")
	}
	h2, _ := hs.Hash(ctx, "correct horse battery")
	if h2 == h {
		t.Fatal("two hashes of one password are equal: salt not random")
	}
	if ok, err := hs.Check(ctx, dummyHash, "x"); ok || err != nil {
		t.Fatalf("dummy hash must parse and never match: ok=%v err=%v", ok, err)
	}
	if _, err := hs.Check(ctx, "$2a$10$abc", "x"); err == nil {
		t.Fatal("a non-argon2id hash must be refused")
	}
}
