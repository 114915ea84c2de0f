package dom0

import (
	"encoding/binary"
	"io/fs"
	"sync"
)

// SFTP request types, flags and attribute bits that createModes reads and
// writes (draft-ietf-secsh-filexfer-02).
const (
	sshFxpOpen                 = 3
	sshFxpMkdir                = 14
	sshFxfCreat                = 0x08
	sshFileXferAttrPermissions = 0x04
)

// createModes gives the OPEN requests that may create a file, and the MKDIR
// requests, of chosen paths their permission bits. pkg/sftp sends both
// without attributes and has no way to add any, so the server would create
// the file or directory with its default mode (0666 or 0777, less its
// umask) and a chmod would come only a round trip later: a window in which
// a disk image is readable by every user of the host. Instead, the
// packetWriter of every session passes each whole request through apply,
// which fills in the attributes the caller registered with set: the server
// (OpenSSH's sftp-server, as pkg/sftp's) then creates it with that mode,
// less its umask, in the same system call, as os.OpenFile and os.Mkdir do.
type createModes struct {
	mu sync.Mutex
	m  map[string]*createMode
}

type createMode struct{ perm uint32 }

// set registers perm for the next creating request of path until the
// returned function is called.
func (c *createModes) set(path string, perm fs.FileMode) (done func()) {
	e := &createMode{perm: uint32(perm.Perm())}
	c.mu.Lock()
	if c.m == nil {
		c.m = map[string]*createMode{}
	}
	c.m[path] = e
	c.mu.Unlock()
	return func() {
		c.mu.Lock()
		if c.m[path] == e {
			delete(c.m, path)
		}
		c.mu.Unlock()
	}
}

// apply returns pkt (one whole SFTP message: length, type, body) with the
// permissions attribute added when it is an OPEN with SSH_FXF_CREAT or a
// MKDIR, without attributes, of a registered path; any other message is
// returned as it is.
func (c *createModes) apply(pkt []byte) []byte {
	if c == nil || len(pkt) < 13 || (pkt[4] != sshFxpOpen && pkt[4] != sshFxpMkdir) {
		return pkt
	}
	body := pkt[9:] // after length, type and request id
	n := uint64(binary.BigEndian.Uint32(body))
	if uint64(len(body)) < 4+n {
		return pkt
	}
	path, rest := body[4:4+n], body[4+n:]
	switch {
	case pkt[4] == sshFxpOpen && len(rest) == 8 && binary.BigEndian.Uint32(rest)&sshFxfCreat != 0 && binary.BigEndian.Uint32(rest[4:]) == 0:
	case pkt[4] == sshFxpMkdir && len(rest) == 4 && binary.BigEndian.Uint32(rest) == 0:
	default:
		return pkt
	}
	c.mu.Lock()
	e := c.m[string(path)]
	c.mu.Unlock()
	if e == nil {
		return pkt
	}
	out := make([]byte, 0, len(pkt)+4)
	out = append(out, pkt[:len(pkt)-4]...)
	out = binary.BigEndian.AppendUint32(out, sshFileXferAttrPermissions)
	out = binary.BigEndian.AppendUint32(out, e.perm)
	binary.BigEndian.PutUint32(out, uint32(len(out)-4))
	return out
}
