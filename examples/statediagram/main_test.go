package main

import (
	"os"
	"path/filepath"
	"testing"
)

// TestRunWritesAndChecks: the command writes every page, -check accepts
// what it wrote and the committed docs, and refuses a changed or missing
// page.
func TestRunWritesAndChecks(t *testing.T) {
	dir := t.TempDir()
	if err := run(dir, false); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, true); err != nil {
		t.Fatalf("check right after writing: %v", err)
	}
	if err := run(filepath.Join("..", "..", "docs", "statediagrams"), true); err != nil {
		t.Fatalf("committed diagrams: %v", err)
	}
	page := filepath.Join(dir, "resize.md")
	if err := os.WriteFile(page, []byte("stale\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, true); err == nil {
		t.Fatal("check accepted a changed page")
	}
	if err := os.Remove(page); err != nil {
		t.Fatal(err)
	}
	if err := run(dir, true); err == nil {
		t.Fatal("check accepted a missing page")
	}
}
