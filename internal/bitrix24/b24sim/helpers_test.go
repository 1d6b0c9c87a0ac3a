package b24sim_test

import (
	"errors"
	"strconv"
)

func strconvFormat(n int64) string { return strconv.FormatInt(n, 10) }

func errorsIs(err, target error) bool { return errors.Is(err, target) }
