package main

import (
	"context"
	"io"
)

// runReal is the run against pools given with -xapi.
func runReal(ctx context.Context, c *config, stdout, stderr io.Writer) error {
	return &UnavailableError{Flag: "-xapi", Reason: "not yet"}
}
