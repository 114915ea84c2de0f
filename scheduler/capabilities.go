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
	attr capAttr // what path names, resolved once
	req  string
	op   specOp // the first word, resolved

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
			if _, ok := capAttributes[key]; !ok {
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
	sp := capSpec{attr: resolveCapAttr(path), req: req}
	if words := pySplit(req); len(words) > 0 {
		sp.op, sp.words = specOps[words[0]], words[1:]
		if sp.op == opNone {
			sp.op = opEqual // an unknown first word: the whole requirement must equal
		}
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
		v, ok := capValue(h, specs[i].attr)
		if !ok || !specs[i].match(v) {
			return false
		}
	}
	return true
}

// capAttr names a host attribute a capabilities key can reach.
type capAttr uint8

const (
	capNone capAttr = iota // Nova finds None: the host fails
	capHost
	capNodename
	capFreeRAM
	capFreeDisk
	capTotalRAM
	capTotalDisk
	capVCPUsTotal
	capVCPUsUsed
	capNumInstances
	capNumIOOps
	capFailedBuilds
	capHypervisorType
	capHypervisorVersion
	capCPUInfo
	capCPUInfoArch
	capRAMRatio
	capCPURatio
	capDiskRatio
)

// capAttributes are the attributes of Nova's HostState that this model
// carries, which is what a capabilities key can name.
var capAttributes = map[string]capAttr{
	"host": capHost, "nodename": capNodename, "free_ram_mb": capFreeRAM, "free_disk_mb": capFreeDisk,
	"total_usable_ram_mb": capTotalRAM, "total_usable_disk_gb": capTotalDisk,
	"vcpus_total": capVCPUsTotal, "vcpus_used": capVCPUsUsed, "num_instances": capNumInstances,
	"num_io_ops": capNumIOOps, "failed_builds": capFailedBuilds, "hypervisor_type": capHypervisorType,
	"hypervisor_version": capHypervisorVersion, "cpu_info": capCPUInfo,
	"ram_allocation_ratio": capRAMRatio, "cpu_allocation_ratio": capCPURatio, "disk_allocation_ratio": capDiskRatio,
}

// resolveCapAttr is ComputeCapabilitiesFilter._get_capabilities' walk
// down path, on the attributes this model carries: cpu_info is the JSON
// object {"arch": CPUArch}, the form libvirt reports; no other attribute
// has fields below it.
func resolveCapAttr(path []string) capAttr {
	if len(path) == 0 {
		return capNone
	}
	a := capAttributes[path[0]]
	switch {
	case len(path) == 1:
		return a
	case a == capCPUInfo && len(path) == 2 && path[1] == "arch":
		return capCPUInfoArch
	}
	return capNone
}

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

// capValue returns the value of attribute a on h, or false when Nova
// finds None there.
func capValue(h *HostState, a capAttr) (capVal, bool) {
	switch a {
	case capNone:
		return capVal{}, false
	case capHost:
		return strVal(h.Host), true
	case capNodename:
		if h.Node == "" {
			return strVal(h.Host), true
		}
		return strVal(h.Node), true
	case capHypervisorType:
		return strVal(h.HypervisorType), h.HypervisorType != ""
	case capCPUInfo:
		return strVal(`{"arch": ` + pyJSONQuote(h.CPUArch) + `}`), h.CPUArch != ""
	case capCPUInfoArch:
		return strVal(h.CPUArch), h.CPUArch != ""
	case capRAMRatio:
		return floatVal(h.ramRatio()), true
	case capCPURatio:
		return floatVal(h.cpuRatio()), true
	case capDiskRatio:
		return floatVal(h.diskRatio()), true
	}
	return intVal(capInt(h, a)), true
}

// capInt returns the integer attributes.
func capInt(h *HostState, a capAttr) int64 {
	switch a {
	case capFreeRAM:
		return h.FreeRAMMB
	case capFreeDisk:
		return h.FreeDiskMB
	case capTotalRAM:
		return h.TotalUsableRAMMB
	case capTotalDisk:
		return h.TotalUsableDiskGB
	case capVCPUsTotal:
		return h.VCPUsTotal
	case capVCPUsUsed:
		return h.VCPUsUsed
	case capNumInstances:
		return h.NumInstances
	case capNumIOOps:
		return h.NumIOOps
	case capFailedBuilds:
		return h.FailedBuilds
	}
	return h.HypervisorVersion
}

// extraSpecMatch is nova/scheduler/filters/extra_specs_ops.py's match on
// a string value.
func extraSpecMatch(value, req string) bool {
	sp := newCapSpec(nil, req)
	return sp.match(strVal(value))
}

// specOp is an operator of extra_specs_ops.
type specOp uint8

const (
	opNone    specOp = iota // no words: the value must equal the requirement
	opEqual                 // no operator: the same
	opOr                    // <or>
	opAtLeast               // = and >=
	opFloatEq               // ==
	opFloatNe               // !=
	opFloatLe               // <=
	opAllIn                 // <all-in>
	opIn                    // <in>
	opStrEq                 // s==
	opStrNe                 // s!=
	opStrLt                 // s<
	opStrLe                 // s<=
	opStrGt                 // s>
	opStrGe                 // s>=
)

var specOps = map[string]specOp{
	"<or>": opOr, "=": opAtLeast, ">=": opAtLeast, "==": opFloatEq, "!=": opFloatNe, "<=": opFloatLe,
	"<all-in>": opAllIn, "<in>": opIn, "s==": opStrEq, "s!=": opStrNe, "s<": opStrLt, "s<=": opStrLe,
	"s>": opStrGt, "s>=": opStrGe,
}

// match is extra_specs_ops.match: "<op> operand" with the float operators
// =, ==, !=, >=, <= ("=" means at least), the string operators s==, s!=,
// s<, s<=, s>, s>=, <in> (substring), <all-in> (every word a substring)
// and "<or> a <or> b"; anything else must equal the value. Where Nova's
// code raises (an operand that is not a number, a "<or>" without
// operands) the host does not pass.
func (sp *capSpec) match(v capVal) bool {
	words := sp.words
	switch {
	case sp.op <= opEqual:
		return v.str() == sp.req
	case sp.op == opOr:
		return orMatch(v.str(), words)
	case len(words) == 0:
		return false // an operator without an operand
	case sp.op <= opFloatLe:
		x, ok := v.float()
		if !ok || !sp.yOK {
			return false // Nova raises ValueError
		}
		return floatCmp(sp.op, x, sp.y)
	case sp.op == opAllIn:
		s := v.str()
		for _, w := range words {
			if !strings.Contains(s, w) {
				return false
			}
		}
		return true
	}
	return strCmp(sp.op, v.str(), words[0])
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

func floatCmp(op specOp, x, y float64) bool {
	switch op {
	case opAtLeast:
		return x >= y
	case opFloatEq:
		return x == y
	case opFloatNe:
		return x != y
	}
	return x <= y
}

func strCmp(op specOp, x, y string) bool {
	switch op {
	case opIn:
		return strings.Contains(x, y)
	case opStrEq:
		return x == y
	case opStrNe:
		return x != y
	case opStrLt:
		return x < y
	case opStrLe:
		return x <= y
	case opStrGt:
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
