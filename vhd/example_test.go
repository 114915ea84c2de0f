package vhd_test

import (
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/xenflow/xenflow/vhd"
)

// exampleDir makes a scratch directory for an example.
func exampleDir() (string, func()) {
	dir, err := os.MkdirTemp("", "vhd-example")
	if err != nil {
		log.Fatal(err)
	}
	return dir, func() { os.RemoveAll(dir) }
}

func ExampleCreate() {
	dir, cleanup := exampleDir()
	defer cleanup()
	fsys := vhd.DirFS(dir)

	// A 100 MiB dynamic disk as vhd-util create -s 100 makes it (rounded
	// up to whole 2 MiB blocks), with a fixed UUID and time.
	id, _ := vhd.ParseUUID("6e8b4a8f-2f1c-4b59-9a57-2f7c1a3d9e01")
	d, err := vhd.Create(fsys, "disk.vhd", vhd.SizeFromMiB(100), &vhd.CreateOptions{
		UUID:      id,
		Timestamp: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC),
	})
	if err != nil {
		log.Fatal(err)
	}
	if _, err := d.WriteAt([]byte("hello"), 1<<20); err != nil {
		log.Fatal(err)
	}
	if err := d.Close(); err != nil {
		log.Fatal(err)
	}

	info, err := vhd.Query(fsys, "disk.vhd")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(info.Type, info.UUID, info.VirtualSize>>20, "MiB")
	fmt.Println("valid:", vhd.Check(fsys, "disk.vhd") == nil)
	// Output:
	// dynamic 6e8b4a8f-2f1c-4b59-9a57-2f7c1a3d9e01 100 MiB
	// valid: true
}

func ExampleSnapshot() {
	dir, cleanup := exampleDir()
	defer cleanup()
	fsys := vhd.DirFS(dir)

	base, err := vhd.Create(fsys, "base.vhd", 8<<20, nil)
	if err != nil {
		log.Fatal(err)
	}
	base.WriteAt([]byte("base data"), 0)
	base.Close()

	// The child records base.vhd's UUID, and relative locators
	// ("file://./base.vhd", ".\base.vhd") as blktap writes them.
	child, err := vhd.Snapshot(fsys, "leaf.vhd", "base.vhd", nil)
	if err != nil {
		log.Fatal(err)
	}
	child.WriteAt([]byte("LEAF"), 0)
	fmt.Println(child.Type(), child.Locators())
	child.Close()

	// SM hides every node but the leaf.
	b, err := vhd.OpenFile(fsys, "base.vhd", os.O_RDWR)
	if err != nil {
		log.Fatal(err)
	}
	b.SetHidden(true)
	b.Close()

	info, _ := vhd.Query(fsys, "leaf.vhd")
	fmt.Println("parent:", info.Parent, "depth:", info.Depth)
	// Output:
	// differencing [./base.vhd ./base.vhd ./base.vhd]
	// parent: base.vhd depth: 2
}

func ExampleOpenChain() {
	dir, cleanup := exampleDir()
	defer cleanup()
	fsys := vhd.DirFS(dir)

	base, _ := vhd.Create(fsys, "base.vhd", 4<<20, nil)
	base.WriteAt([]byte("base data"), 0)
	base.Close()
	leaf, _ := vhd.Snapshot(fsys, "leaf.vhd", "base.vhd", nil)
	leaf.WriteAt([]byte("LEAF"), 0)
	leaf.Close()

	c, err := vhd.OpenChain(fsys, "leaf.vhd")
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 9)
	c.ReadAt(buf, 0)
	fmt.Printf("%q depth %d\n", buf, c.Depth())

	// The whole virtual disk as raw bytes, streamed a block at a time.
	h := sha256.New()
	n, err := c.WriteTo(h)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, "bytes")
	// Output:
	// "LEAF data" depth 2
	// 4194304 bytes
}
