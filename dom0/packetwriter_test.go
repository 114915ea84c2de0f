package dom0

import (
	"bytes"
	"encoding/binary"
	"math/rand"
	"slices"
	"testing"
)

// recordingWriter keeps every write it is given.
type recordingWriter struct{ writes [][]byte }

func (r *recordingWriter) Write(b []byte) (int, error) {
	r.writes = append(r.writes, bytes.Clone(b))
	return len(b), nil
}
func (r *recordingWriter) Close() error { return nil }

func (r *recordingWriter) joined() []byte { return bytes.Join(r.writes, nil) }

// sftpMsg is a packet of n bytes after its length field; its first hdr
// bytes (length included) stand for the header pkg/sftp writes first.
func sftpMsg(n int, seed int64) []byte {
	b := make([]byte, 4+n)
	binary.BigEndian.PutUint32(b, uint32(n))
	rand.New(rand.NewSource(seed)).Read(b[4:])
	return b
}

func TestPacketWriter(t *testing.T) {
	big := sftpMsg(261120+25, 1)
	small := sftpMsg(20, 2)
	tests := []struct {
		name   string
		pieces [][]byte
		sizes  []int // the writes the channel must see
	}{
		{name: "whole packet", pieces: [][]byte{small}, sizes: []int{24}},
		{name: "header then data", pieces: [][]byte{big[:29], big[29:]}, sizes: []int{sshPacketData, len(big) - sshPacketData}},
		{name: "header then short data", pieces: [][]byte{small[:9], small[9:]}, sizes: []int{24}},
		{name: "two packets in one write", pieces: [][]byte{append(bytes.Clone(small), small...)}, sizes: []int{24, 24}},
		{name: "length split", pieces: [][]byte{small[:2], small[2:]}, sizes: []int{24}},
		{name: "three pieces", pieces: [][]byte{big[:29], big[29:1000], big[1000:]}, sizes: []int{sshPacketData, len(big) - sshPacketData}},
		{name: "header then data and more", pieces: [][]byte{small[:9], append(bytes.Clone(small[9:]), small...)}, sizes: []int{24, 24}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recordingWriter{}
			pw := &packetWriter{w: rec}
			var want []byte
			for _, p := range tt.pieces {
				want = append(want, p...)
				if n, err := pw.Write(p); err != nil || n != len(p) {
					t.Fatalf("Write(%d bytes) = %d, %v", len(p), n, err)
				}
			}
			if !bytes.Equal(rec.joined(), want) {
				t.Fatal("the channel got other bytes than were written")
			}
			var sizes []int
			for _, w := range rec.writes {
				sizes = append(sizes, len(w))
			}
			if !slices.Equal(sizes, tt.sizes) {
				t.Errorf("channel writes of %v bytes, want %v", sizes, tt.sizes)
			}
		})
	}
	t.Run("oversized", func(t *testing.T) {
		pw := &packetWriter{w: &recordingWriter{}}
		hdr := binary.BigEndian.AppendUint32(nil, 2<<20)
		if _, err := pw.Write(append(hdr, 1, 2, 3)); err == nil {
			t.Fatal("a 2 MiB SFTP packet was accepted")
		}
	})
}
