package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"github.com/xenflow/xenflow/statemachine"
)

func main() {
	out := flag.String("o", filepath.Join("docs", "statediagrams"), "directory to write the diagrams into")
	check := flag.Bool("check", false, "compare with the directory instead of writing; exit 1 when it differs")
	flag.Parse()
	if err := run(*out, *check); err != nil {
		fmt.Fprintln(os.Stderr, "statediagram:", err)
		os.Exit(1)
	}
}

func run(dir string, check bool) error {
	docs := statemachine.RenderDocs()
	names := make([]string, 0, len(docs))
	for n := range docs {
		names = append(names, n)
	}
	sort.Strings(names)
	if !check {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
	}
	var stale []string
	for _, n := range names {
		path := filepath.Join(dir, n)
		if check {
			got, err := os.ReadFile(path)
			if err != nil || !bytes.Equal(got, []byte(docs[n])) {
				stale = append(stale, path)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(docs[n]), 0o644); err != nil {
			return err
		}
		fmt.Println("wrote", path)
	}
	if len(stale) > 0 {
		return fmt.Errorf("out of date: %v; run go run ./examples/statediagram -o %s", stale, dir)
	}
	return nil
}
