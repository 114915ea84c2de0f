package dom0

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestTransferDirect(t *testing.T) {
	s := startSSHD(t)
	src, dst := s.Dial(t), s.Dial(t)
	sr, dr := t.TempDir(), t.TempDir()
	want := randomFile(t, sr, "/0.vhd", 3<<20+5, 3)
	host, port, _ := strings.Cut(s.Addr, ":")
	p, _ := strconv.Atoi(port)
	d := DirectOptions{Addr: host, Port: p, User: s.User, IdentityFile: s.UserKey, KnownHostsFile: s.KnownHosts}
	var calls int
	res, err := TransferDirect(context.Background(), src, dst, []FileCopy{{Src: sr + "/0.vhd", Dst: dr + "/0.vhd"}}, d,
		&TransferOptions{Progress: func(Progress) { calls++ }})
	if err != nil {
		t.Fatalf("%v\n%s", err, s.Log())
	}
	got, _ := os.ReadFile(dr + "/0.vhd")
	if !bytes.Equal(got, want) || res[0].Size != int64(len(want)) || calls != 1 {
		t.Fatalf("direct copy differs (%d bytes, result %+v, %d progress calls)", len(got), res, calls)
	}
	// An unknown destination host key is refused by the source's scp.
	d.KnownHostsFile = knownHostsFor(t, "127.0.0.1:1", s.HostKeys...)
	_, err = TransferDirect(context.Background(), src, dst, []FileCopy{{Src: sr + "/0.vhd", Dst: dr + "/1.vhd"}}, d, nil)
	var ee *ExitError
	if !errors.As(err, &ee) {
		t.Fatalf("unknown host: %v, want *ExitError from scp", err)
	}
	if _, err := os.Stat(dr + "/1.vhd"); !os.IsNotExist(err) {
		t.Fatal("final name created")
	}
	for _, bad := range []DirectOptions{
		{Addr: "-oProxyCommand=x"}, {Addr: "h;reboot"}, {Addr: "h", User: "a b"}, {Addr: "h", Port: 70000},
		{Addr: "h", IdentityFile: "../key"},
	} {
		if _, err := TransferDirect(context.Background(), src, dst, []FileCopy{{Src: sr + "/0.vhd", Dst: dr + "/2.vhd"}}, bad, nil); !errors.Is(err, ErrBadName) {
			t.Errorf("%+v: got %v, want ErrBadName", bad, err)
		}
	}
}
