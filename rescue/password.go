package rescue

import (
	"fmt"
	"io"
)

// symbolGroups are Nova's DEFAULT_PASSWORD_SYMBOLS (nova/utils.py): digits,
// upper and lower case letters without the look-alikes 0, 1, I, O and l.
var symbolGroups = [...]string{"23456789", "ABCDEFGHJKLMNPQRSTUVWXYZ", "abcdefghijkmnopqrstuvwxyz"}

// generatePassword returns a password of n symbols with at least one of
// each group, as nova/utils.py generate_password does: one symbol of each
// group, the rest from all groups, shuffled. n must be at least the number
// of groups.
func generatePassword(r io.Reader, n int) (string, error) {
	all := symbolGroups[0] + symbolGroups[1] + symbolGroups[2]
	pw := make([]byte, 0, n)
	for _, g := range symbolGroups {
		i, err := uniform(r, len(g))
		if err != nil {
			return "", err
		}
		pw = append(pw, g[i])
	}
	for len(pw) < n {
		i, err := uniform(r, len(all))
		if err != nil {
			return "", err
		}
		pw = append(pw, all[i])
	}
	// Fisher-Yates, so the guaranteed symbols are not always first.
	for i := len(pw) - 1; i > 0; i-- {
		j, err := uniform(r, i+1)
		if err != nil {
			return "", err
		}
		pw[i], pw[j] = pw[j], pw[i]
	}
	return string(pw), nil
}

// uniform returns a uniformly drawn integer in [0, n), n <= 256, by
// rejection sampling one byte at a time.
func uniform(r io.Reader, n int) (int, error) {
	limit := 256 - 256%n
	var b [1]byte
	for {
		if _, err := io.ReadFull(r, b[:]); err != nil {
			return 0, fmt.Errorf("rescue: reading randomness: %w", err)
		}
		if int(b[0]) < limit {
			return int(b[0]) % n, nil
		}
	}
}

// newRequestID returns a Nova-style request ID, "req-" and a random UUID.
func newRequestID(r io.Reader) (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(r, b[:]); err != nil {
		return "", fmt.Errorf("rescue: reading randomness: %w", err)
	}
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("req-%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16]), nil
}
