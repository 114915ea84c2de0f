package quota

import (
	crand "crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
)

// IDSource makes the unique part of reservation ids. It must be safe for
// concurrent use and its ids must not contain '/'.
//
// The ledger stores a reservation under "<id>/<project>", so that Commit and
// Rollback find the project from the id alone: a flow stores that string with
// its migration and settles it after a crash, in another process.
type IDSource func() (string, error)

// RandomIDs returns an IDSource that makes random (version 4) UUIDs from the
// bytes of r, reading r under a lock so that r need not be safe for
// concurrent use. Pass crypto/rand.Reader in production and a seeded
// math/rand source in tests for repeatable ids. With a nil r every id
// request fails with an error wrapping ErrInvalidOption.
func RandomIDs(r io.Reader) IDSource {
	var mu sync.Mutex
	return func() (string, error) {
		if r == nil {
			return "", &InputError{Op: "random ids", Field: "reader", Value: "nil", Err: ErrInvalidOption}
		}
		var b [16]byte
		mu.Lock()
		_, err := io.ReadFull(r, b[:])
		mu.Unlock()
		if err != nil {
			return "", fmt.Errorf("quota: reading reservation id: %w", err)
		}
		return formatUUID(&b), nil
	}
}

// randomID returns "<random UUID>/<project>", the default reservation id,
// with one allocation. The bytes come from a ChaCha8 generator that the
// transaction seeded from crypto/rand when it was made.
func (t *txn) randomID(project string) (string, error) {
	if t.rng == nil {
		var seed [32]byte
		if _, err := io.ReadFull(crand.Reader, seed[:]); err != nil {
			return "", fmt.Errorf("quota: seeding reservation ids: %w", err)
		}
		t.rng = rand.NewChaCha8(seed)
	}
	var b [16]byte
	binary.LittleEndian.PutUint64(b[:8], t.rng.Uint64())
	binary.LittleEndian.PutUint64(b[8:], t.rng.Uint64())
	var u [36]byte
	encodeUUID(&u, &b)
	var sb strings.Builder
	sb.Grow(len(u) + 1 + len(project))
	sb.Write(u[:])
	sb.WriteByte('/')
	sb.WriteString(project)
	return sb.String(), nil
}

func formatUUID(b *[16]byte) string {
	var s [36]byte
	encodeUUID(&s, b)
	return string(s[:])
}

func encodeUUID(s *[36]byte, b *[16]byte) {
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 4122 variant
	hex.Encode(s[0:8], b[0:4])
	s[8] = '-'
	hex.Encode(s[9:13], b[4:6])
	s[13] = '-'
	hex.Encode(s[14:18], b[6:8])
	s[18] = '-'
	hex.Encode(s[19:23], b[8:10])
	s[23] = '-'
	hex.Encode(s[24:], b[10:])
}

// SequentialIDs returns an IDSource that counts: prefix-1, prefix-2, ... It
// is deterministic, for tests and examples. Two ledgers (or two processes)
// sharing a store must use different prefixes, or their ids collide.
func SequentialIDs(prefix string) IDSource {
	var n atomic.Uint64
	return func() (string, error) {
		return prefix + "-" + strconv.FormatUint(n.Add(1), 10), nil
	}
}
