package dom0_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/xenflow/xenflow/dom0"
	"github.com/xenflow/xenflow/vhd"
)

// Dial a host's dom0 over SSH, with its key checked against known_hosts, and
// run a command there.
func ExampleDialSSH() {
	ctx := context.Background()
	home, _ := os.UserHomeDir()
	host, err := dom0.DialSSH(ctx, "xenserver-1.example.net", &dom0.SSHConfig{
		User:            "root",
		KnownHostsFiles: []string{filepath.Join(home, ".ssh", "known_hosts")},
		KeyFiles:        []dom0.KeyFile{{Path: filepath.Join(home, ".ssh", "id_ed25519")}},
	})
	if err != nil {
		log.Fatal(err) // a *dom0.HostKeyError or *dom0.AuthError says why
	}
	defer host.Close()
	out, _, err := host.Run(ctx, []string{"sha256sum", "--", dom0.RunPath("/var/run/sr-mount/sr/vdi.vhd")})
	if err != nil {
		log.Fatal(err) // a *dom0.ExitError carries the exit status and stderr
	}
	fmt.Printf("%s", out)
}

// Copy files between two hosts through the controller, with a progress
// line per chunk.
func ExampleTransfer() {
	dir, _ := os.MkdirTemp("", "xenflow-example")
	defer os.RemoveAll(dir)
	os.MkdirAll(filepath.Join(dir, "a/images"), 0o755)
	os.MkdirAll(filepath.Join(dir, "b/images"), 0o755)
	os.WriteFile(filepath.Join(dir, "a/images/0.vhd"), make([]byte, 3<<20), 0o644)
	src, _ := dom0.Local(filepath.Join(dir, "a"))
	dst, _ := dom0.Local(filepath.Join(dir, "b"))

	res, err := dom0.Transfer(context.Background(), src, dst,
		[]dom0.FileCopy{{Src: "/images/0.vhd", Dst: "/images/0.vhd"}},
		&dom0.TransferOptions{
			ChunkSize:  1 << 20,
			FileSHA256: true,
			Progress: func(p dom0.Progress) {
				fmt.Printf("%s %d/%d, all %d/%d\n", p.File, p.FileDone, p.FileSize, p.Done, p.Total)
			},
		})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("sha256 %x\n", res[0].SHA256[:4])
	// Output:
	// /images/0.vhd 1048576/3145728, all 1048576/3145728
	// /images/0.vhd 2097152/3145728, all 2097152/3145728
	// /images/0.vhd 3145728/3145728, all 3145728/3145728
	// sha256 bbd05cf6
}

// Move an instance's root disk chain from one host's SR to another's, as
// Nova's resize does, and learn the UUIDs it got on the destination.
func ExampleMoveChain() {
	dir, _ := os.MkdirTemp("", "xenflow-example")
	defer os.RemoveAll(dir)
	instance, _ := vhd.ParseUUID("0f8e4b1c-1111-4a4a-8b8b-000000000001")
	srcSR, _ := vhd.ParseUUID("5a5a5a5a-2222-4b4b-8c8c-000000000002")
	dstSR, _ := vhd.ParseUUID("6b6b6b6b-3333-4c4c-8d8d-000000000003")
	base, _ := vhd.ParseUUID("aaaaaaaa-0000-4000-8000-000000000001")
	leaf, _ := vhd.ParseUUID("aaaaaaaa-0000-4000-8000-000000000002")

	// Two simulated hosts, a base disk and a snapshot leaf in the source SR.
	os.MkdirAll(filepath.Join(dir, "host1"), 0o755)
	os.MkdirAll(filepath.Join(dir, "host2"), 0o755)
	src, _ := dom0.Local(filepath.Join(dir, "host1"))
	dst, _ := dom0.Local(filepath.Join(dir, "host2"))
	srcDir, _ := dom0.SRPath(srcSR)
	dstDir, _ := dom0.SRPath(dstSR)
	src.MkdirAll(srcDir, 0o755)
	dst.MkdirAll(dstDir, 0o755)
	d, _ := vhd.Create(src, srcDir+"/"+base.String()+".vhd", 64<<20, &vhd.CreateOptions{UUID: base})
	d.WriteAt([]byte("base data"), 0)
	d.Close()
	d, _ = vhd.Snapshot(src, srcDir+"/"+leaf.String()+".vhd", srcDir+"/"+base.String()+".vhd", &vhd.CreateOptions{UUID: leaf})
	d.Close()

	res, err := dom0.MoveChain(context.Background(), src, dst, dom0.SendRequest{
		Label: dom0.ChainLabel{Instance: instance},
		SrcSR: srcSR, Leaf: leaf, DstSR: dstSR,
	}, nil)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("disks in the new chain:", len(res.Chain))
	c, _ := vhd.OpenChain(dst, res.Files[0])
	buf := make([]byte, 9)
	c.ReadAt(buf, 0)
	c.Close()
	fmt.Printf("%s\n", buf)
	// Output:
	// disks in the new chain: 2
	// base data
}
