package dom0

import (
	"bytes"
	"encoding/binary"
	"testing"
)

func openMsg(path string, pflags, attrFlags uint32) []byte {
	b := binary.BigEndian.AppendUint32(nil, 7) // request id
	b = append(b, sftpString(path)...)
	b = binary.BigEndian.AppendUint32(b, pflags)
	b = binary.BigEndian.AppendUint32(b, attrFlags)
	return sftpPacket(sshFxpOpen, b)
}

func TestCreateModesApply(t *testing.T) {
	var c createModes
	done := c.set("/sr/a.vhd", 0o600)
	withMode := func(m []byte, perm uint32) []byte {
		m = bytes.Clone(m)
		m[len(m)-1] = sshFileXferAttrPermissions // attribute flags were 0
		m = binary.BigEndian.AppendUint32(m, perm)
		binary.BigEndian.PutUint32(m, uint32(len(m)-4))
		return m
	}
	mkdir := sftpPacket(sshFxpMkdir, append(append(binary.BigEndian.AppendUint32(nil, 8), sftpString("/sr/a.vhd")...), 0, 0, 0, 0))
	tests := []struct {
		name    string
		in, out []byte
	}{
		{"open with create", openMsg("/sr/a.vhd", sshFxfCreat|2, 0), withMode(openMsg("/sr/a.vhd", sshFxfCreat|2, 0), 0o600)},
		{"mkdir", mkdir, withMode(mkdir, 0o600)},
		{"open without create", openMsg("/sr/a.vhd", 1, 0), nil},
		{"other path", openMsg("/sr/b.vhd", sshFxfCreat, 0), nil},
		{"attributes already given", openMsg("/sr/a.vhd", sshFxfCreat, 1), nil},
		{"not an open", sftpPacket(sshFxpStatus, make([]byte, 20)), nil},
		{"path cut", sftpPacket(sshFxpOpen, []byte{0, 0, 0, 1, 0, 0, 0, 99, 'x'}), nil},
	}
	for _, tt := range tests {
		want := tt.out
		if want == nil {
			want = tt.in
		}
		if got := c.apply(tt.in); !bytes.Equal(got, want) {
			t.Errorf("%s: got %x, want %x", tt.name, got, want)
		}
	}
	done()
	if m := openMsg("/sr/a.vhd", sshFxfCreat, 0); !bytes.Equal(c.apply(m), m) {
		t.Error("mode applied after done")
	}
}

func FuzzCreateModesApply(f *testing.F) {
	f.Add(openMsg("/a", sshFxfCreat, 0))
	f.Add(sftpPacket(sshFxpMkdir, append(append(binary.BigEndian.AppendUint32(nil, 8), sftpString("/a")...), 0, 0, 0, 0)))
	f.Fuzz(func(t *testing.T, pkt []byte) {
		var c createModes
		defer c.set("/a", 0o700)()
		out := c.apply(pkt)
		if !bytes.Equal(out, pkt) && (len(out) != len(pkt)+4 || !bytes.Equal(out[4:len(pkt)-4], pkt[4:len(pkt)-4]) ||
			int(binary.BigEndian.Uint32(out)) != len(out)-4) {
			t.Fatalf("%x became %x", pkt, out)
		}
	})
}
