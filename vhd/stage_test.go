package vhd_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path"
	"syscall"
	"testing"

	"github.com/xenflow/xenflow/vhd"
)

func TestStageHardLinksTheChain(t *testing.T) {
	w := newWorld(t)
	leaf, _ := buildChain(t, w.fsys, w.src, 3, 21)
	files, err := vhd.Stage(context.Background(), w.fsys, w.src, leaf, w.staging, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 3 {
		t.Fatalf("%d files", len(files))
	}
	for k, f := range files {
		if f.Seq != k || f.Name != path.Join(w.staging, fmt.Sprintf("%d.vhd", k)) || path.Dir(f.Source) != w.src {
			t.Errorf("file %d: %+v", k, f)
		}
		a, err := os.Stat(w.local(f.Name))
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.Stat(w.local(f.Source))
		if err != nil {
			t.Fatal(err)
		}
		if !os.SameFile(a, b) {
			t.Errorf("%s is not a hard link to %s", f.Name, f.Source)
		}
		if st, ok := a.Sys().(*syscall.Stat_t); ok && st.Nlink != 2 {
			t.Errorf("%s has %d links", f.Name, st.Nlink)
		}
		info, err := vhd.Query(w.fsys, f.Source)
		if err != nil {
			t.Fatal(err)
		}
		if info.UUID != f.UUID || info.PhysicalSize != f.PhysicalSize {
			t.Errorf("file %d: %+v, query says %+v", k, f, info)
		}
	}
	if files[0].UUID != leaf {
		t.Errorf("leaf UUID %s, want %s", files[0].UUID, leaf)
	}
}

// TestStageInTwoSendsLikeNovaResize stages a running instance's ancestors as
// 1..n first, then the leaf alone as 0, into one staging directory, and
// imports the result.
func TestStageInTwoSendsLikeNovaResize(t *testing.T) {
	w := newWorld(t)
	leaf, want := buildChain(t, w.fsys, w.src, 4, 22)
	info, err := vhd.Query(w.fsys, path.Join(w.src, leaf.String()+".vhd"))
	if err != nil {
		t.Fatal(err)
	}
	parent, err := vhd.Query(w.fsys, info.Parent)
	if err != nil {
		t.Fatal(err)
	}
	anc, err := vhd.Stage(context.Background(), w.fsys, w.src, parent.UUID, path.Join(w.src, "send"), &vhd.StageOptions{FirstSeq: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(anc) != 3 || anc[0].Seq != 1 || anc[2].Seq != 3 {
		t.Fatalf("ancestors %+v", anc)
	}
	w.transfer(t, anc)
	lf, err := vhd.Stage(context.Background(), w.fsys, w.src, leaf, path.Join(w.src, "send"), &vhd.StageOptions{Depth: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(lf) != 1 || lf[0].Seq != 0 {
		t.Fatalf("leaf %+v", lf)
	}
	w.transfer(t, lf)
	srcBefore := dirState(t, w.local(w.src))
	res, err := vhd.Import(context.Background(), w.fsys, w.staging, w.dst, seededImport(8))
	if err != nil {
		t.Fatal(err)
	}
	got, depth := readChain(t, w.fsys, res.Files[0])
	if depth != 4 || !bytes.Equal(got, want) {
		t.Fatalf("depth %d, equal %v", depth, bytes.Equal(got, want))
	}
	sameState(t, "source SR", srcBefore, dirState(t, w.local(w.src)))
	if got, depth := readChain(t, w.fsys, path.Join(w.src, leaf.String()+".vhd")); depth != 4 || !bytes.Equal(got, want) {
		t.Fatal("source chain no longer reads as before")
	}
}

func TestStageRefuses(t *testing.T) {
	ctx := context.Background()
	t.Run("existing staging file", func(t *testing.T) {
		w := newWorld(t)
		leaf, _ := buildChain(t, w.fsys, w.src, 3, 23)
		if err := w.fsys.MkdirAll(w.staging, 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(w.local(path.Join(w.staging, "2.vhd")), []byte("keep me"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, err := vhd.Stage(ctx, w.fsys, w.src, leaf, w.staging, nil)
		if !errors.Is(err, vhd.ErrExists) {
			t.Fatalf("err = %v", err)
		}
		ents, _ := os.ReadDir(w.local(w.staging))
		if len(ents) != 1 {
			t.Fatalf("links not removed after failure: %v", ents)
		}
		if b, _ := os.ReadFile(w.local(path.Join(w.staging, "2.vhd"))); string(b) != "keep me" {
			t.Fatal("existing file replaced")
		}
	})
	t.Run("parent outside the SR", func(t *testing.T) {
		w := newWorld(t)
		leaf, _ := buildChain(t, w.fsys, w.src, 2, 24)
		// Move the leaf to another directory and relink it to its parent.
		if err := w.fsys.MkdirAll("/elsewhere", 0o755); err != nil {
			t.Fatal(err)
		}
		info, err := vhd.Query(w.fsys, path.Join(w.src, leaf.String()+".vhd"))
		if err != nil {
			t.Fatal(err)
		}
		moved := path.Join("/elsewhere", leaf.String()+".vhd")
		if err := w.fsys.Rename(path.Join(w.src, leaf.String()+".vhd"), moved); err != nil {
			t.Fatal(err)
		}
		if err := vhd.SetParent(w.fsys, moved, info.Parent); err != nil {
			t.Fatal(err)
		}
		_, err = vhd.Stage(ctx, w.fsys, "/elsewhere", leaf, w.staging, nil)
		if !errors.Is(err, vhd.ErrUnsafeName) {
			t.Fatalf("err = %v", err)
		}
		if _, err := os.Stat(w.local(w.staging)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("staging directory created: %v", err)
		}
	})
	t.Run("staging in the SR itself", func(t *testing.T) {
		w := newWorld(t)
		leaf, _ := buildChain(t, w.fsys, w.src, 2, 26)
		before := dirState(t, w.local(w.src))
		for _, staging := range []string{w.src, w.src + "/", w.src + "/x/.."} {
			if _, err := vhd.Stage(ctx, w.fsys, w.src, leaf, staging, nil); !errors.Is(err, vhd.ErrInvalidArgument) {
				t.Errorf("staging %s: err = %v", staging, err)
			}
		}
		sameState(t, "SR", before, dirState(t, w.local(w.src)))
	})
	t.Run("missing leaf", func(t *testing.T) {
		w := newWorld(t)
		u, _ := vhd.ParseUUID("11111111-2222-4333-8444-555555555555")
		_, err := vhd.Stage(ctx, w.fsys, w.src, u, w.staging, nil)
		var se *vhd.StagingError
		if !errors.Is(err, os.ErrNotExist) || !errors.As(err, &se) || se.Op != "stage" {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("bad options", func(t *testing.T) {
		w := newWorld(t)
		leaf, _ := buildChain(t, w.fsys, w.src, 2, 25)
		for _, o := range []vhd.StageOptions{{FirstSeq: -1}, {Depth: -2}, {FirstSeq: 30}, {FirstSeq: 29}} {
			if _, err := vhd.Stage(ctx, w.fsys, w.src, leaf, w.staging, &o); err == nil {
				t.Errorf("%+v accepted", o)
			}
		}
		if _, err := vhd.Stage(ctx, w.fsys, w.src, vhd.UUID{}, w.staging, nil); !errors.Is(err, vhd.ErrInvalidArgument) {
			t.Errorf("null UUID: %v", err)
		}
	})
}

func TestScan(t *testing.T) {
	w := newWorld(t)
	leaf, _ := buildChain(t, w.fsys, w.src, 3, 26)
	if err := os.WriteFile(w.local(path.Join(w.src, "junk.vhd")), []byte("not a vhd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(w.local(path.Join(w.src, "readme.txt")), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	ents, err := vhd.Scan(w.fsys, w.src)
	if err != nil {
		t.Fatal(err)
	}
	if len(ents) != 4 {
		t.Fatalf("%d entries: %+v", len(ents), ents)
	}
	var leaves, hidden, bases, broken int
	for _, e := range ents {
		switch {
		case e.Err != nil:
			broken++
			if !errors.Is(e.Err, vhd.ErrNotVHD) && !errors.Is(e.Err, vhd.ErrTruncated) {
				t.Errorf("junk: %v", e.Err)
			}
			continue
		case e.Parent == "":
			bases++
		}
		if e.Hidden {
			hidden++
		}
		if e.UUID == leaf {
			leaves++
			if e.Hidden || e.Parent == "" || e.VirtualSize != chainSize {
				t.Errorf("leaf entry %+v", e)
			}
		}
	}
	if leaves != 1 || hidden != 2 || bases != 1 || broken != 1 {
		t.Fatalf("leaves %d hidden %d bases %d broken %d", leaves, hidden, bases, broken)
	}
	if _, err := vhd.Scan(w.fsys, "/nope"); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("scan of a missing dir: %v", err)
	}
}

// ExampleStage links an SR chain into a sequence-numbered staging set, the
// form a chain travels in between hosts.
func ExampleStage() {
	root, err := os.MkdirTemp("", "stage")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	fsys := vhd.DirFS(root)
	_ = fsys.MkdirAll("sr", 0o755)

	base, _ := vhd.Create(fsys, "sr/base.vhd", 4<<20, nil)
	base.Close()
	leafID, _ := vhd.ParseUUID("6f1c7a52-8d4e-4b8a-9d3e-0a1b2c3d4e5f")
	leaf, _ := vhd.Snapshot(fsys, "sr/"+leafID.String()+".vhd", "sr/base.vhd", nil)
	leaf.Close()

	files, err := vhd.Stage(context.Background(), fsys, "sr", leafID, "staging", nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, f := range files {
		fmt.Println(f.Seq, f.Name, "->", f.Source)
	}
	// Output:
	// 0 staging/0.vhd -> sr/6f1c7a52-8d4e-4b8a-9d3e-0a1b2c3d4e5f.vhd
	// 1 staging/1.vhd -> sr/base.vhd
}

// ExampleScan lists the VHDs of an SR directory, as vhd-util scan does.
func ExampleScan() {
	root, err := os.MkdirTemp("", "scan")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	fsys := vhd.DirFS(root)
	_ = fsys.MkdirAll("sr", 0o755)
	base, _ := vhd.Create(fsys, "sr/base.vhd", 4<<20, nil)
	_ = base.SetHidden(true)
	base.Close()
	leaf, _ := vhd.Snapshot(fsys, "sr/leaf.vhd", "sr/base.vhd", nil)
	leaf.Close()

	ents, err := vhd.Scan(fsys, "sr")
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range ents {
		fmt.Printf("%s capacity=%d hidden=%v parent=%q\n", e.Name, e.VirtualSize, e.Hidden, e.Parent)
	}
	// Output:
	// sr/base.vhd capacity=4194304 hidden=true parent=""
	// sr/leaf.vhd capacity=4194304 hidden=false parent="sr/base.vhd"
}

// ExampleDirFS shows DirFS keeping names inside its directory.
func ExampleDirFS() {
	root, err := os.MkdirTemp("", "dirfs")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(root)
	fsys := vhd.DirFS(root)
	// A host-like absolute path lands inside root.
	_ = fsys.MkdirAll("/var/run/sr-mount/sr1", 0o755)
	d, err := vhd.Create(fsys, "/var/run/sr-mount/sr1/disk.vhd", 2<<20, nil)
	if err != nil {
		fmt.Println(err)
		return
	}
	d.Close()
	_, err = fsys.Open("/var/run/../../../etc/passwd")
	fmt.Println(errors.Is(err, vhd.ErrUnsafeName))
	// Output: true
}
