package scheduler

import (
	"strconv"
	"strings"
	"unicode"
)

// pyStrip trims whitespace the way Python's str.strip() does.
func pyStrip(s string) string {
	return strings.TrimFunc(s, unicode.IsSpace)
}

// pyFloat parses s the way Python's float() does for the values Nova reads
// from aggregate metadata: surrounding whitespace, an optional sign,
// decimal digits with single underscores between digits, an optional
// fraction and exponent, or inf/infinity/nan in any case. Hexadecimal
// forms, which Go accepts and Python does not, are refused.
func pyFloat(s string) (float64, bool) {
	s = pyStrip(s)
	body := s
	if body != "" && (body[0] == '+' || body[0] == '-') {
		body = body[1:]
	}
	switch strings.ToLower(body) {
	case "inf", "infinity", "nan":
		v, err := strconv.ParseFloat(s, 64)
		return v, err == nil
	}
	if !pyDecimal(body) {
		return 0, false
	}
	v, err := strconv.ParseFloat(strings.ReplaceAll(s, "_", ""), 64)
	if err != nil {
		// Out of range: Python gives inf for huge exponents; Go reports
		// ErrRange with ±Inf, which the callers reject as not finite.
		if ne, ok := err.(*strconv.NumError); ok && ne.Err == strconv.ErrRange {
			return v, true
		}
		return 0, false
	}
	return v, true
}

// pyDecimal checks Python's floatnumber grammar (without the sign).
func pyDecimal(s string) bool {
	i := 0
	digits := func() int { // digitpart: digit (["_"] digit)*
		start := i
		if i >= len(s) || !isDigit(s[i]) {
			return 0
		}
		i++
		for i < len(s) {
			if isDigit(s[i]) {
				i++
			} else if s[i] == '_' && i+1 < len(s) && isDigit(s[i+1]) {
				i += 2
			} else {
				break
			}
		}
		return i - start
	}
	intPart := digits()
	frac := 0
	if i < len(s) && s[i] == '.' {
		i++
		frac = digits()
	}
	if intPart == 0 && frac == 0 {
		return false
	}
	if i < len(s) && (s[i] == 'e' || s[i] == 'E') {
		i++
		if i < len(s) && (s[i] == '+' || s[i] == '-') {
			i++
		}
		if digits() == 0 {
			return false
		}
	}
	return i == len(s)
}

func isDigit(c byte) bool { return c >= '0' && c <= '9' }
