// Package safe runs a call so that a panic in it becomes an error.
//
// The app's work runs in goroutines River does not watch: the Learn writes
// of a sync in parallel, the Bitrix24 read beside the Learn read. A panic
// there would end the process, and every other portal's jobs with it
// (River recovers only the goroutine that runs the job); the data behind
// such a panic comes from servers a portal's admin chooses.
package safe

import (
	"fmt"
	"runtime/debug"
)

// PanicError is a recovered panic.
type PanicError struct {
	Value any
	Stack []byte
}

func (e *PanicError) Error() string { return fmt.Sprintf("panic: %v", e.Value) }

// Call calls fn and returns its error, or a *PanicError if it panics.
func Call(fn func() error) (err error) {
	defer func() {
		if v := recover(); v != nil {
			err = &PanicError{Value: v, Stack: debug.Stack()}
		}
	}()
	return fn()
}
