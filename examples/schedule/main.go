package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/xenflow/xenflow/scheduler/schedjson"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// Exit statuses.
const (
	exitSelected = 0 // a host was selected (also: -h)
	exitNoHost   = 1 // no valid host
	exitBadInput = 2 // bad input or usage
)

const usageSynopsis = `usage: schedule [-in FILE] [< FILE]

Reads one scheduling document (config, hosts, request) from FILE or stdin
and writes the ranking and the selection as JSON to stdout. Exit status 0
when a host is selected, 1 when no host is valid, 2 on bad input.

Example:
  go run ./examples/schedule -in examples/schedule/testdata/request.json

Flags:
`

// run is the program: 0 on success (and for -h), 1 when no host is
// valid, 2 on bad input.
func run(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("schedule", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // printed below, to stdout for -h
	in := fs.String("in", "-", "read the document from `FILE` (- is stdin)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(fs, stdout)
			return exitSelected
		}
		usage(fs, stderr)
		return exitBadInput
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "schedule: unexpected arguments %q\n", fs.Args())
		usage(fs, stderr)
		return exitBadInput
	}
	data, err := readDocument(*in, stdin)
	if err != nil {
		fmt.Fprintf(stderr, "schedule: %v\n", err)
		return exitBadInput
	}
	return schedule(data, stdout, stderr)
}

func usage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, usageSynopsis)
	fs.SetOutput(w)
	fs.PrintDefaults()
}

// readDocument reads at most one byte more than schedjson.MaxDocumentSize,
// so that Parse can refuse an oversized document.
func readDocument(name string, stdin io.Reader) ([]byte, error) {
	r := stdin
	if name != "-" {
		f, err := os.Open(name)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		r = f
	}
	data, err := io.ReadAll(io.LimitReader(r, schedjson.MaxDocumentSize+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", name, err)
	}
	return data, nil
}

// schedule parses, schedules and writes the result.
func schedule(data []byte, stdout, stderr io.Writer) int {
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
		return exitBadInput
	}
	if out.Error != "" {
		return exitNoHost
	}
	return exitSelected
}

func fail(stdout, stderr io.Writer, err error) int {
	fmt.Fprintf(stderr, "schedule: %v\n", err)
	if werr := schedjson.Encode(stdout, schedjson.ErrorDocument(err)); werr != nil {
		fmt.Fprintf(stderr, "schedule: writing stdout: %v\n", werr)
	}
	return exitBadInput
}
