package manager

import (
	"context"
	"fmt"
	"testing"
	"time"

	"b24learn/internal/pgtest"
)

// Over the account's failure cap a guessing campaign gets one answer, the
// cap's, whatever it sends. A campaign against an account with a second
// factor sends each candidate password several times from new addresses:
// the right one, with a wrong code, takes a place in the account's code
// count, and once that count is full its answer must not turn into another
// one than a wrong password's, which would name the right password.
func TestSignInOverTheCapNamesNoPassword(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	pool := pgtest.NewPool(t)
	kr := mustKeyring(t)
	now := time.Date(2026, 5, 4, 10, 0, 0, 0, time.UTC)
	l := DefaultLimits
	l.LoginPerAccount = Limit{Max: 4, Window: time.Hour}
	l.LoginCodePerAccount = Limit{Max: 2, Window: time.Hour}

	const password = "hal's long password"
	m, err := CreateManager(ctx, pool, DefaultHasher(), "hal@ispring.example", password)
	if err != nil {
		t.Fatal(err)
	}
	turnOnTOTP(t, pool, kr, m, password, now)

	at := now.Add(time.Minute)
	ip := 0
	try := func(pw string) error {
		ip++
		_, err := SignIn(ctx, pool, kr, DefaultHasher(), l, at, Credentials{Email: m.Email, Password: pw, Code: "000000",
			IP: fmt.Sprintf("203.0.113.%d", ip)})
		return err
	}
	for range l.LoginPerAccount.Max {
		_ = try("guess")
	}
	wrong := try("another guess")
	if !isLimited(wrong) {
		t.Fatalf("over the cap, a wrong password: err = %v, want the cap's answer", wrong)
	}
	for i := range 2*l.LoginCodePerAccount.Max + 1 {
		if err := try(password); !isLimited(err) || err.Error() != wrong.Error() {
			t.Fatalf("over the cap, the right password (try %d): err = %v, a wrong one's is %v", i+1, err, wrong)
		}
	}
}
