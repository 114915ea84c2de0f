package scheduler

import (
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
)

// capSpec is one flavor extra spec that ComputeCapabilitiesFilter checks:
// the attribute path (the key without its "capabilities:" scope) and the
// requirement, in nova/scheduler/filters/extra_specs_ops.py's syntax,
// split once per request.
type capSpec struct {
	path  []string
	req   string
	op    string   // the first word, "" when there is none
	words []string // the words after the operator
	y     float64  // words[0] as Python's float(), when yOK
	yOK   bool
}

// capSpecs returns the extra specs ComputeCapabilitiesFilter checks, as
// ComputeCapabilitiesFilter._satisfies_extra_specs selects them: a key
// scoped "capabilities:" names a host attribute path; a key without a
// scope counts only when it names a host attribute; any other scope is
// ignored.
func capSpecs(extra map[string]string) []capSpec {
	var out []capSpec
	for key, req := range extra {
		scope := strings.Split(key, ":")
		if len(scope) == 1 {
			if !capAttributes[key] {
				continue
			}
		} else if scope[0] != "capabilities" {
			continue
		} else {
			scope = scope[1:]
		}
		out = append(out, newCapSpec(scope, req))
	}
	return out
}

func newCapSpec(path []string, req string) capSpec {
	sp := capSpec{path: path, req: req}
	if words := pySplit(req); len(words) > 0 {
		sp.op, sp.words = words[0], words[1:]
		if len(sp.words) > 0 {
			sp.y, sp.yOK = pyFloat(sp.words[0])
		}
	}
	return sp
}

// capabilitiesPass is ComputeCapabilitiesFilter.host_passes: every spec's
// attribute exists on the host and its value, as Python's str() writes it,
// matches the requirement.
func capabilitiesPass(h *HostState, specs []capSpec) bool {
	for i := range specs {
		v, ok := capValue(h, specs[i].path)
		if !ok || !specs[i].match(v) {
			return false
		}
	}
	return true
}

// capAttributes are the attributes of Nova's HostState that this model
// carries, which is what a capabilities key can name.
var capAttributes = setOf("host", "nodename", "free_ram_mb", "free_disk_mb", "total_usable_ram_mb",
	"total_usable_disk_gb", "vcpus_total", "vcpus_used", "num_instances", "num_io_ops", "failed_builds",
	"hypervisor_type", "hypervisor_version", "cpu_info", "ram_allocation_ratio", "cpu_allocation_ratio",
	"disk_allocation_ratio")

// capVal is a host attribute's value: a string, or a number whose
// str() is formed only when a string operator needs it.
type capVal struct {
	s     string
	n     float64
	isNum bool
	isInt bool
}

func strVal(s string) capVal    { return capVal{s: s} }
func intVal(v int64) capVal     { return capVal{n: float64(v), isNum: true, isInt: true} }
func floatVal(v float64) capVal { return capVal{n: v, isNum: true} }

// str is Python's str() of the value.
func (v capVal) str() string {
	switch {
	case !v.isNum:
		return v.s
	case v.isInt:
		return strconv.FormatInt(int64(v.n), 10)
	}
	return pyFloatRepr(v.n)
}

// float is Python's float(str(v)); numbers need no round trip (the
// counts are below 2^50, so exact).
func (v capVal) float() (float64, bool) {
	if v.isNum {
		return v.n, true
	}
	return pyFloat(v.s)
}

// capValue is ComputeCapabilitiesFilter._get_capabilities: the value at
// path, or false when Nova finds None there. cpu_info is the JSON object
// {"arch": CPUArch}, the form libvirt reports; no other attribute has
// fields below it.
func capValue(h *HostState, path []string) (capVal, bool) {
	if len(path) == 0 {
		return capVal{}, false
	}
	if path[0] == "cpu_info" {
		switch {
		case h.CPUArch == "":
			return capVal{}, false
		case len(path) == 1:
			return strVal(`{"arch": ` + pyJSONQuote(h.CPUArch) + `}`), true
		case len(path) == 2 && path[1] == "arch":
			return strVal(h.CPUArch), true
		}
		return capVal{}, false
	}
	if len(path) != 1 {
		return capVal{}, false
	}
	switch path[0] {
	case "host":
		return strVal(h.Host), true
	case "nodename":
		if h.Node == "" {
			return strVal(h.Host), true
		}
		return strVal(h.Node), true
	case "hypervisor_type":
		return strVal(h.HypervisorType), h.HypervisorType != ""
	case "ram_allocation_ratio":
		return floatVal(h.ramRatio()), true
	case "cpu_allocation_ratio":
		return floatVal(h.cpuRatio()), true
	case "disk_allocation_ratio":
		return floatVal(h.diskRatio()), true
	}
	return capInt(h, path[0])
}

// capInt returns the integer attributes.
func capInt(h *HostState, name string) (capVal, bool) {
	var v int64
	switch name {
	case "free_ram_mb":
		v = h.FreeRAMMB
	case "free_disk_mb":
		v = h.FreeDiskMB
	case "total_usable_ram_mb":
		v = h.TotalUsableRAMMB
	case "total_usable_disk_gb":
		v = h.TotalUsableDiskGB
	case "vcpus_total":
		v = h.VCPUsTotal
	case "vcpus_used":
		v = h.VCPUsUsed
	case "num_instances":
		v = h.NumInstances
	case "num_io_ops":
		v = h.NumIOOps
	case "failed_builds":
		v = h.FailedBuilds
	case "hypervisor_version":
		v = h.HypervisorVersion
	default:
		return capVal{}, false
	}
	return intVal(v), true
}

// extraSpecMatch is nova/scheduler/filters/extra_specs_ops.py's match on
// a string value.
func extraSpecMatch(value, req string) bool {
	sp := newCapSpec(nil, req)
	return sp.match(strVal(value))
}

// match is extra_specs_ops.match: "<op> operand" with the float operators
// =, ==, !=, >=, <= ("=" means at least), the string operators s==, s!=,
// s<, s<=, s>, s>=, <in> (substring), <all-in> (every word a substring)
// and "<or> a <or> b"; anything else must equal the value. Where Nova's
// code raises (an operand that is not a number, a "<or>" without
// operands) the host does not pass.
func (sp *capSpec) match(v capVal) bool {
	words := sp.words
	switch sp.op {
	case "":
		return v.str() == sp.req
	case "<or>":
		return orMatch(v.str(), words)
	case "=", "==", "!=", ">=", "<=":
		if len(words) == 0 {
			return false
		}
		x, ok := v.float()
		if !ok || !sp.yOK {
			return false // Nova raises ValueError
		}
		return floatCmp(sp.op, x, sp.y)
	case "<all-in>":
		if len(words) == 0 {
			return false
		}
		s := v.str()
		for _, w := range words {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	case "<in>", "s==", "s!=", "s<", "s<=", "s>", "s>=":
		if len(words) == 0 {
			return false
		}
		return strCmp(sp.op, v.str(), words[0])
	}
	return v.str() == sp.req
}

// orMatch is the "<or> a <or> b" loop of extra_specs_ops.match; the
// keyword between operands is dropped unchecked, as there.
func orMatch(value string, words []string) bool {
	for {
		if len(words) == 0 {
			return false // Nova raises IndexError
		}
		w := words[0]
		words = words[1:]
		if w == value {
			return true
		}
		if len(words) == 0 {
			return false
		}
		words = words[1:]
		if len(words) == 0 {
			return false
		}
	}
}

func floatCmp(op string, x, y float64) bool {
	switch op {
	case "=", ">=":
		return x >= y
	case "==":
		return x == y
	case "!=":
		return x != y
	}
	return x <= y
}

func strCmp(op, x, y string) bool {
	switch op {
	case "<in>":
		return strings.Contains(x, y)
	case "s==":
		return x == y
	case "s!=":
		return x != y
	case "s<":
		return x < y
	case "s<=":
		return x <= y
	case "s>":
		return x > y
	}
	return x >= y
}

// pySplit is Python's str.split() without arguments.
func pySplit(s string) []string {
	return strings.FieldsFunc(s, pyIsSpace)
}

// pyIsSpace is Python's str.isspace for one character, which also counts
// the separators U+001C to U+001F.
func pyIsSpace(r rune) bool {
	return unicode.IsSpace(r) || (r >= 0x1c && r <= 0x1f)
}

// pyFloatRepr is Python's repr of a float: the shortest digits that read
// back the same, with ".0" on whole numbers and an exponent when the
// decimal point falls outside [-4, 16).
func pyFloatRepr(v float64) string {
	e := strconv.FormatFloat(v, 'e', -1, 64)
	i := strings.LastIndexByte(e, 'e')
	if i < 0 { // Inf or NaN
		return strings.ToLower(strings.TrimPrefix(e, "+"))
	}
	exp, _ := strconv.Atoi(e[i+1:])
	if exp < -4 || exp >= 16 {
		return e
	}
	f := strconv.FormatFloat(v, 'f', -1, 64)
	if !strings.ContainsAny(f, ".") {
		f += ".0"
	}
	return f
}

// pyJSONQuote is a string as Python's json.dumps writes it (ensure_ascii).
func pyJSONQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"':
			b.WriteString(`\"`)
		case r == '\\':
			b.WriteString(`\\`)
		case r == '\n':
			b.WriteString(`\n`)
		case r == '\r':
			b.WriteString(`\r`)
		case r == '\t':
			b.WriteString(`\t`)
		case r == '\b':
			b.WriteString(`\b`)
		case r == '\f':
			b.WriteString(`\f`)
		case r < 0x20 || (r >= 0x7f && r < 0x10000):
			b.WriteString(`\u`)
			b.WriteString(hex4(r))
		case r >= 0x10000:
			hi, lo := utf16.EncodeRune(r)
			b.WriteString(`\u` + hex4(hi) + `\u` + hex4(lo))
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func hex4(r rune) string {
	const digits = "0123456789abcdef"
	return string([]byte{digits[r>>12&0xf], digits[r>>8&0xf], digits[r>>4&0xf], digits[r&0xf]})
}
