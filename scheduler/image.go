package scheduler

import (
	"strconv"
	"strings"
)

// The canonical names Nova accepts (nova.objects.fields Architecture,
// HVType and VMMode in Zed).
var (
	validArchitectures = setOf("alpha", "armv6", "armv7l", "armv7b", "aarch64", "cris", "i686", "ia64", "lm32",
		"m68k", "microblaze", "microblazeel", "mips", "mipsel", "mips64", "mips64el", "openrisc", "parisc",
		"parisc64", "ppc", "ppcle", "ppc64", "ppc64le", "ppcemb", "s390", "s390x", "sh4", "sh4eb", "sparc",
		"sparc64", "unicore32", "x86_64", "xtensa", "xtensaeb")
	validHVTypes = setOf("baremetal", "bhyve", "docker", "fake", "hyperv", "ironic", "kqemu", "kvm", "lxc", "lxd",
		"openvz", "parallels", "phyp", "qemu", "test", "uml", "vbox", "vz", "vmware", "xen", "zvm", "prsm")
	validVMModes = setOf("hvm", "xen", "uml", "exe")
)

func setOf(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// canonicalArch is Nova's Architecture.canonicalize.
func canonicalArch(name string) (string, bool) {
	n := strings.ToLower(name)
	switch n {
	case "i386", "i486", "i586", "x86_32", "x86_32p":
		n = "i686"
	case "amd64":
		n = "x86_64"
	}
	return n, validArchitectures[n]
}

// canonicalHVType is Nova's HVType.canonicalize.
func canonicalHVType(name string) (string, bool) {
	n := strings.ToLower(name)
	if n == "xapi" {
		n = "xen"
	}
	return n, validHVTypes[n]
}

// canonicalVMMode is Nova's VMMode.canonicalize.
func canonicalVMMode(name string) (string, bool) {
	n := strings.ToLower(name)
	switch n {
	case "pv":
		n = "xen"
	case "hv", "baremetal":
		n = "hvm"
	}
	return n, validVMModes[n]
}

// strictVersion is distutils' StrictVersion: two or three numbers and an
// optional a/b pre-release tag.
type strictVersion struct {
	v      [3]int64
	pre    byte // 0, 'a' or 'b'
	preNum int64
}

func parseStrictVersion(s string) (strictVersion, bool) {
	var sv strictVersion
	parts := 0
	i := 0
	num := func() (int64, bool) {
		start := i
		for i < len(s) && isDigit(s[i]) {
			i++
		}
		if i == start {
			return 0, false
		}
		v, err := strconv.ParseInt(s[start:i], 10, 64)
		return v, err == nil
	}
	for parts < 3 {
		v, ok := num()
		if !ok {
			return sv, false
		}
		sv.v[parts] = v
		parts++
		if i < len(s) && s[i] == '.' && parts < 3 {
			i++
			continue
		}
		break
	}
	if parts < 2 {
		return sv, false
	}
	if i < len(s) && (s[i] == 'a' || s[i] == 'b') {
		sv.pre = s[i]
		i++
		v, ok := num()
		if !ok {
			return sv, false
		}
		sv.preNum = v
	}
	return sv, i == len(s)
}

func (a strictVersion) cmp(b strictVersion) int {
	for k := 0; k < 3; k++ {
		if a.v[k] != b.v[k] {
			if a.v[k] < b.v[k] {
				return -1
			}
			return 1
		}
	}
	switch {
	case a.pre == 0 && b.pre == 0:
		return 0
	case a.pre != 0 && b.pre == 0:
		return -1
	case a.pre == 0 && b.pre != 0:
		return 1
	}
	if a.pre != b.pre {
		if a.pre < b.pre {
			return -1
		}
		return 1
	}
	switch {
	case a.preNum < b.preNum:
		return -1
	case a.preNum > b.preNum:
		return 1
	}
	return 0
}

type versionCond struct {
	op string
	v  strictVersion
}

// parseVersionPredicate parses img_hv_requested_version the way Nova does:
// distutils' VersionPredicate("image_prop (" + value + ")").
func parseVersionPredicate(value string) ([]versionCond, bool) {
	s := pyStrip("image_prop (" + value + ")")
	// The name "image_prop" matches; the rest must be "(list)".
	rest := pyStrip(s[len("image_prop"):])
	if len(rest) < 2 || rest[0] != '(' || rest[len(rest)-1] != ')' {
		return nil, false
	}
	inner := rest[1 : len(rest)-1]
	var conds []versionCond
	for _, p := range strings.Split(inner, ",") {
		p = strings.Trim(p, asciiSpace)
		var op string
		for _, o := range []string{"<=", ">=", "!=", "==", "<", ">"} {
			if strings.HasPrefix(p, o) {
				op = o
				break
			}
		}
		if op == "" {
			return nil, false
		}
		vs := strings.Trim(p[len(op):], asciiSpace)
		if vs == "" || strings.ContainsAny(vs, asciiSpace+",") {
			return nil, false
		}
		v, ok := parseStrictVersion(vs)
		if !ok {
			return nil, false
		}
		conds = append(conds, versionCond{op, v})
	}
	return conds, true
}

const asciiSpace = " \t\n\r\f\v"

// versionString is oslo_utils.versionutils.convert_version_to_str.
func versionString(v int64) string {
	var parts []string
	for v != 0 {
		parts = append([]string{strconv.FormatInt(v%1000, 10)}, parts...)
		v /= 1000
	}
	return strings.Join(parts, ".")
}

// satisfies reports whether hypervisor version hv (Nova's integer form)
// meets every condition; ok is false when the version is not a
// StrictVersion (Nova raises ValueError there).
func satisfies(conds []versionCond, hv int64) (pass, ok bool) {
	sv, ok := parseStrictVersion(versionString(hv))
	if !ok {
		return false, false
	}
	return satisfiesStrict(conds, sv), true
}

// satisfiesStrict reports whether sv meets every condition.
func satisfiesStrict(conds []versionCond, sv strictVersion) bool {
	for _, c := range conds {
		r := sv.cmp(c.v)
		var p bool
		switch c.op {
		case "<":
			p = r < 0
		case "<=":
			p = r <= 0
		case "==":
			p = r == 0
		case ">":
			p = r > 0
		case ">=":
			p = r >= 0
		case "!=":
			p = r != 0
		}
		if !p {
			return false
		}
	}
	return true
}
