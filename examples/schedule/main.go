package main

import (
	"fmt"
	"io"
	"os"

	"github.com/xenflow/xenflow/scheduler/schedjson"
)

func main() {
	os.Exit(run(os.Stdin, os.Stdout, os.Stderr))
}

// run is the program: 0 on success, 1 when no host is valid, 2 on bad
// input.
func run(stdin io.Reader, stdout, stderr io.Writer) int {
	data, err := io.ReadAll(io.LimitReader(stdin, schedjson.MaxDocumentSize+1))
	if err != nil {
		fmt.Fprintf(stderr, "schedule: reading stdin: %v\n", err)
		return 2
	}
	in, err := schedjson.Parse(data)
	if err != nil {
		return fail(stdout, stderr, err)
	}
	out, err := schedjson.Run(in)
	if err != nil {
		return fail(stdout, stderr, err)
	}
	if err := schedjson.Encode(stdout, out); err != nil {
		fmt.Fprintf(stderr, "schedule: writing stdout: %v\n", err)
		return 2
	}
	if out.Error != "" {
		return 1
	}
	return 0
}

func fail(stdout, stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "schedule: %v\n", err)
	if werr := schedjson.Encode(stdout, schedjson.ErrorDocument(err)); werr != nil {
		fmt.Fprintf(stderr, "schedule: writing stdout: %v\n", werr)
	}
	return 2
}
