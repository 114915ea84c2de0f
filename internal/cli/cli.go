// Package cli holds what the example programs share on their command
// line: exit statuses and the error for refused flags.
package cli

import (
	"errors"
	"flag"
	"fmt"
	"io"
)

// Exit statuses of the example programs.
const (
	ExitOK    = 0 // the run ended as asked (also -h)
	ExitFail  = 1 // the operation or the pool failed
	ExitUsage = 2 // bad flags
)

// UsageError is a flag or a combination of flags a command refuses
// before it does anything.
type UsageError struct {
	Flag   string
	Reason string
}

// Error implements the error interface.
func (e *UsageError) Error() string { return e.Flag + ": " + e.Reason }

// ExitStatus prints err after the command's name (unless it is -h's
// flag.ErrHelp) and returns the exit status: ExitUsage for a
// *UsageError, ExitFail for any other error.
func ExitStatus(command string, err error, stderr io.Writer) int {
	var ue *UsageError
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
		return ExitOK
	case errors.As(err, &ue):
		fmt.Fprintln(stderr, command+":", err)
		return ExitUsage
	default:
		fmt.Fprintln(stderr, command+":", err)
		return ExitFail
	}
}
