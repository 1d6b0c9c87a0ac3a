package config

import (
	"strconv"
	"time"
)

// vars reads the variables of Load: each reader keeps the default when the
// variable is unset and records what is wanted when it does not parse or is
// out of range.
type vars struct {
	getenv func(string) string
	fail   func(v, want string)
}

// envValue reads name with parse; valid says which parsed values are accepted.
func envValue[T any](e vars, name string, def T, parse func(string) (T, error), valid func(T) bool, want string) T {
	raw := e.getenv(name)
	if raw == "" {
		return def
	}
	v, err := parse(raw)
	if err != nil || !valid(v) {
		e.fail(name, want)
	}
	return v
}

// whole reads a whole number from min to max.
func (e vars) whole(name string, def, min, max int, want string) int {
	return envValue(e, name, def, strconv.Atoi, func(n int) bool { return n >= min && n <= max }, want)
}

// duration reads a duration such as 90s; valid bounds it.
func (e vars) duration(name string, def time.Duration, valid func(time.Duration) bool, want string) time.Duration {
	return envValue(e, name, def, time.ParseDuration, valid, want)
}

// flag reads true or false (1, t, TRUE, … as strconv.ParseBool takes them); unset is false.
func (e vars) flag(name string) bool {
	return envValue(e, name, false, strconv.ParseBool, func(bool) bool { return true }, "true or false")
}

// positive reads a number greater than 0.
func (e vars) positive(name string, def float64, want string) float64 {
	parse := func(s string) (float64, error) { return strconv.ParseFloat(s, 64) }
	return envValue(e, name, def, parse, func(f float64) bool { return f > 0 }, want)
}

func notNegative(d time.Duration) bool { return d >= 0 }
