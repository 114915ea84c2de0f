package dom0

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// SFTP message types and the extension this file uses (draft-ietf-secsh-
// filexfer-02 and OpenSSH's PROTOCOL file).
const (
	sshFxpInit          = 1
	sshFxpVersion       = 2
	sshFxpStatus        = 101
	sshFxpExtended      = 200
	sshFxpExtendedReply = 201
	limitsExtension     = "limits@openssh.com"
)

// sftpLimits is what an SFTP server promises in its reply to
// limits@openssh.com: the largest message, read, write and number of open
// handles it accepts; zero means no limit given.
type sftpLimits struct {
	MaxPacket, MaxRead, MaxWrite, MaxHandles uint64
}

// maxSFTPMessage bounds a message read from the server while probing.
const maxSFTPMessage = 64 << 10

// querySFTPLimits speaks just enough SFTP over rw (a fresh sftp subsystem
// channel) to learn the server's limits: INIT, VERSION, then, if the server
// lists limits@openssh.com, the request itself. ok is false when the server
// does not list it. Every field of the server's answers is checked; a
// malformed answer is a *SFTPProtocolError.
func querySFTPLimits(rw io.ReadWriter) (lim sftpLimits, ok bool, err error) {
	if _, err := rw.Write(sftpPacket(sshFxpInit, binary.BigEndian.AppendUint32(nil, 3))); err != nil {
		return lim, false, err
	}
	typ, body, err := readSFTPPacket(rw)
	if err != nil {
		return lim, false, err
	}
	if typ != sshFxpVersion {
		return lim, false, &SFTPProtocolError{Field: "type", Msg: fmt.Sprintf("got message %d, want VERSION (2)", typ)}
	}
	d := sftpDecoder{b: body}
	if v := d.uint32("version"); d.err == nil && v < 3 {
		return lim, false, &SFTPProtocolError{Field: "version", Msg: fmt.Sprintf("server speaks SFTP version %d, want 3", v)}
	}
	for d.err == nil && len(d.b) > 0 {
		name := d.string("extension name")
		d.string("extension data")
		if name == limitsExtension {
			ok = true
		}
	}
	if d.err != nil || !ok {
		return lim, false, d.err
	}

	const id = 1
	req := binary.BigEndian.AppendUint32(nil, id)
	req = binary.BigEndian.AppendUint32(req, uint32(len(limitsExtension)))
	req = append(req, limitsExtension...)
	if _, err := rw.Write(sftpPacket(sshFxpExtended, req)); err != nil {
		return lim, false, err
	}
	typ, body, err = readSFTPPacket(rw)
	if err != nil {
		return lim, false, err
	}
	d = sftpDecoder{b: body}
	if got := d.uint32("request id"); d.err == nil && got != id {
		return lim, false, &SFTPProtocolError{Field: "request id", Msg: fmt.Sprintf("got %d, want %d", got, id)}
	}
	switch typ {
	case sshFxpExtendedReply:
	case sshFxpStatus:
		code := d.uint32("status code")
		if d.err != nil {
			return lim, false, d.err
		}
		return lim, false, &SFTPProtocolError{Field: "status", Msg: fmt.Sprintf("server listed %s but refused it with status %d", limitsExtension, code)}
	default:
		return lim, false, &SFTPProtocolError{Field: "type", Msg: fmt.Sprintf("got message %d, want EXTENDED_REPLY (201)", typ)}
	}
	lim.MaxPacket = d.uint64("max-packet-length")
	lim.MaxRead = d.uint64("max-read-length")
	lim.MaxWrite = d.uint64("max-write-length")
	lim.MaxHandles = d.uint64("max-open-handles")
	if d.err != nil {
		return sftpLimits{}, false, d.err
	}
	return lim, true, nil
}

// SFTPProtocolError reports a message from an SFTP server that breaks the
// protocol: the field that is wrong and how.
type SFTPProtocolError struct {
	Field string
	Msg   string
}

func (e *SFTPProtocolError) Error() string {
	return fmt.Sprintf("dom0: SFTP server sent a bad %s: %s", e.Field, e.Msg)
}

// sftpPacket frames one message: length, type, body.
func sftpPacket(typ byte, body []byte) []byte {
	p := binary.BigEndian.AppendUint32(make([]byte, 0, 5+len(body)), uint32(1+len(body)))
	p = append(p, typ)
	return append(p, body...)
}

// readSFTPPacket reads one message of at most maxSFTPMessage bytes.
func readSFTPPacket(r io.Reader) (byte, []byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return 0, nil, fmt.Errorf("dom0: read SFTP message length: %w", err)
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n == 0 || n > maxSFTPMessage {
		return 0, nil, &SFTPProtocolError{Field: "message length", Msg: fmt.Sprintf("%d bytes (want 1..%d)", n, maxSFTPMessage)}
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		if errors.Is(err, io.EOF) {
			err = io.ErrUnexpectedEOF
		}
		return 0, nil, fmt.Errorf("dom0: read SFTP message of %d bytes: %w", n, err)
	}
	return b[0], b[1:], nil
}

// sftpDecoder reads fields from a message body; the first short field sets
// err and every later read returns zero.
type sftpDecoder struct {
	b   []byte
	err error
}

func (d *sftpDecoder) short(field string, want int) {
	if d.err == nil {
		d.err = &SFTPProtocolError{Field: field, Msg: fmt.Sprintf("message ends with %d bytes left, want %d", len(d.b), want)}
	}
}

func (d *sftpDecoder) uint32(field string) uint32 {
	if d.err != nil || len(d.b) < 4 {
		d.short(field, 4)
		return 0
	}
	v := binary.BigEndian.Uint32(d.b)
	d.b = d.b[4:]
	return v
}

func (d *sftpDecoder) uint64(field string) uint64 {
	if d.err != nil || len(d.b) < 8 {
		d.short(field, 8)
		return 0
	}
	v := binary.BigEndian.Uint64(d.b)
	d.b = d.b[8:]
	return v
}

func (d *sftpDecoder) string(field string) string {
	n := d.uint32(field + " length")
	if d.err != nil {
		return ""
	}
	if uint64(len(d.b)) < uint64(n) {
		d.short(field, int(min(n, maxSFTPMessage)))
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
