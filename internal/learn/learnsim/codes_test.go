package learnsim

import "testing"

func TestFitCode(t *testing.T) {
	const code = "a223c6b3710f85df22e9377d6c4f7553:17" // the app's form, 35 characters
	for _, c := range []struct {
		u      Unsettled
		code   string
		want   string
		refuse bool
	}{
		{Unsettled{}, code, code, false},
		{Unsettled{Codes: CodesCut}, code, "a223c6b3710f85df22e9377d6c4f7553", false},
		{Unsettled{Codes: CodesCut, CodeLimit: 20}, code, "a223c6b3710f85df22e9", false},
		{Unsettled{Codes: CodesCut}, "HR-12", "HR-12", false},
		{Unsettled{Codes: CodesRefusedLong}, code, "", true},
		{Unsettled{Codes: CodesRefusedLong, CodeLimit: 40}, code, code, false},
		{Unsettled{Codes: CodesRefusedChars}, code, "", true},
		{Unsettled{Codes: CodesRefusedChars}, "b24-m_2.x", "b24-m_2.x", false},
		{Unsettled{Codes: CodesRefusedChars}, "отдел", "", true},
	} {
		got, err := c.u.fitCode(c.code)
		if got != c.want || (err != nil) != c.refuse || err != nil && err.status != 400 {
			t.Errorf("%+v %q: %q %v, want %q (refused %v)", c.u, c.code, got, err, c.want, c.refuse)
		}
	}
}
