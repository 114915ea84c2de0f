package dom0test_test

import (
	"errors"
	"fmt"
	"log"
	"os"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/dom0/dom0test"
)

// Fail the second rename a piece of code makes on a host, then look at
// what it did.
func ExampleFaultHost() {
	dir, err := os.MkdirTemp("", "dom0test-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	local, err := dom0.Local(dir)
	if err != nil {
		log.Fatal(err)
	}
	h := dom0test.NewFaultHost(local)
	defer h.Close()
	h.FailNth(dom0test.OpRename, 2)

	_ = h.MkdirAll("/staging", 0o755)
	for _, name := range []string{"0.vhd", "1.vhd"} {
		f, err := h.OpenFile("/staging/"+name+".part", os.O_RDWR|os.O_CREATE, 0o644)
		if err != nil {
			log.Fatal(err)
		}
		_ = f.Close()
		err = h.Rename("/staging/"+name+".part", "/staging/"+name)
		if errors.Is(err, dom0test.ErrInjected) {
			fmt.Println("failed:", err != nil)
		}
	}
	for _, c := range h.Calls() {
		fmt.Println(c)
	}
	// Output:
	// failed: true
	// MkdirAll#1 /staging
	// OpenFile#1 /staging/0.vhd.part
	// File.Close#1 /staging/0.vhd.part
	// Rename#1 /staging/0.vhd.part -> /staging/0.vhd
	// OpenFile#2 /staging/1.vhd.part
	// File.Close#2 /staging/1.vhd.part
	// Rename#2 /staging/1.vhd.part -> /staging/1.vhd -> injected
}
