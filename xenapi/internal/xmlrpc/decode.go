package xmlrpc

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Decoder decodes XML-RPC bodies within limits. The zero Decoder uses
// DefaultMaxBodySize, DefaultMaxDepth and DefaultMaxValues. A Decoder holds
// no state between calls and may be used from many goroutines.
type Decoder struct {
	MaxBodySize int64 // bytes; 0 means DefaultMaxBodySize
	MaxDepth    int   // nesting of structs and arrays; 0 means DefaultMaxDepth
	MaxValues   int   // values (scalars, structs, arrays) in one body; 0 means one per 32 bytes of MaxBodySize
}

// bytesPerValue is the fewest body bytes per value a zero MaxValues
// allows. xapi's VM records average about 70 (a struct member holding an
// empty string takes 45); an empty <value/> takes 8.
const bytesPerValue = 32

func (d *Decoder) maxValues() int {
	if d == nil || d.MaxValues <= 0 {
		return int(min(d.maxBody()/bytesPerValue, math.MaxInt32))
	}
	return d.MaxValues
}

func (d *Decoder) maxBody() int64 {
	if d == nil || d.MaxBodySize <= 0 {
		return DefaultMaxBodySize
	}
	return d.MaxBodySize
}

func (d *Decoder) maxDepth() int {
	if d == nil || d.MaxDepth <= 0 {
		return DefaultMaxDepth
	}
	return d.MaxDepth
}

// maxPresize bounds how much of a size hint ReadBody allocates before the
// bytes arrive: a Content-Length is the peer's claim, and a false one must
// not cost MaxBodySize of memory per call. Past it the buffer grows with
// the bytes actually read.
const maxPresize = 4 << 20

// ReadBody reads all of r, failing with a *DecodeError wrapping ErrTooLarge
// as soon as more than MaxBodySize bytes arrive. sizeHint (for example an
// HTTP Content-Length, or -1) pre-sizes the buffer when it is within the
// limit, up to 4 MiB.
func (d *Decoder) ReadBody(r io.Reader, sizeHint int64) ([]byte, error) {
	limit := d.maxBody()
	var buf bytes.Buffer
	if sizeHint > 0 && sizeHint <= limit {
		buf.Grow(int(min(sizeHint+1, maxPresize)))
	} else {
		buf.Grow(4096)
	}
	n, err := buf.ReadFrom(io.LimitReader(r, limit+1))
	if n > limit {
		return nil, &DecodeError{Offset: limit, What: fmt.Sprintf("body exceeds %d bytes", limit), Err: ErrTooLarge}
	}
	if err != nil {
		return nil, &DecodeError{Offset: n, What: "reading body: " + err.Error(), Err: err}
	}
	return buf.Bytes(), nil
}

// DecodeResponse reads a methodResponse from r. It returns the single result
// value, or a *Fault, or a *DecodeError.
func (d *Decoder) DecodeResponse(r io.Reader) (Value, error) {
	b, err := d.ReadBody(r, -1)
	if err != nil {
		return nil, err
	}
	return d.DecodeResponseBytes(b)
}

// DecodeResponseBytes decodes a methodResponse held in b. The result does
// not refer to b.
func (d *Decoder) DecodeResponseBytes(b []byte) (Value, error) {
	if int64(len(b)) > d.maxBody() {
		return nil, &DecodeError{Offset: d.maxBody(), What: fmt.Sprintf("body exceeds %d bytes", d.maxBody()), Err: ErrTooLarge}
	}
	p := d.newParser(b)
	v, err := p.response()
	if err != nil {
		return nil, p.wrap(err)
	}
	return v, nil
}

// DecodeCall reads a methodCall from r and returns the method name and the
// parameters.
func (d *Decoder) DecodeCall(r io.Reader) (method string, params []Value, err error) {
	b, err := d.ReadBody(r, -1)
	if err != nil {
		return "", nil, err
	}
	return d.DecodeCallBytes(b)
}

// DecodeCallBytes decodes a methodCall held in b.
func (d *Decoder) DecodeCallBytes(b []byte) (method string, params []Value, err error) {
	if int64(len(b)) > d.maxBody() {
		return "", nil, &DecodeError{Offset: d.maxBody(), What: fmt.Sprintf("body exceeds %d bytes", d.maxBody()), Err: ErrTooLarge}
	}
	p := d.newParser(b)
	method, params, err = p.call()
	if err != nil {
		return "", nil, p.wrap(err)
	}
	return method, params, nil
}

// DecodeValueString decodes one standalone "<value>…</value>" fragment, as
// xapi stores in task.result. An empty or all-blank string decodes to "".
func (d *Decoder) DecodeValueString(s string) (Value, error) {
	if int64(len(s)) > d.maxBody() {
		return nil, &DecodeError{Offset: d.maxBody(), What: fmt.Sprintf("value exceeds %d bytes", d.maxBody()), Err: ErrTooLarge}
	}
	p := d.newParser([]byte(s))
	if err := p.skipMisc(); err != nil {
		return nil, p.wrap(err)
	}
	if p.i == len(p.b) {
		return "", nil
	}
	v, err := p.value()
	if err == nil {
		err = p.end()
	}
	if err != nil {
		return nil, p.wrap(err)
	}
	return v, nil
}

// DecodeResponse decodes a methodResponse with the default limits.
func DecodeResponse(r io.Reader) (Value, error) { return (&Decoder{}).DecodeResponse(r) }

// DecodeCall decodes a methodCall with the default limits.
func DecodeCall(r io.Reader) (string, []Value, error) { return (&Decoder{}).DecodeCall(r) }

// DecodeValueString decodes a "<value>…</value>" fragment with the default
// limits.
func DecodeValueString(s string) (Value, error) { return (&Decoder{}).DecodeValueString(s) }

// parser is a recursive-descent parser over a complete body.
type parser struct {
	b         []byte
	i         int
	depth     int
	maxDepth  int
	values    int // values parsed so far
	maxValues int
	names     map[string]string // interned member names
	vals      map[string]Value  // interned short untyped values, boxed
	elems     stack[Value]      // elements of the arrays being parsed
	members   stack[member]     // members of the structs being parsed
	emptyArr  Value             // one boxed empty Array, shared: it cannot be changed
}

// member is a struct member parsed but not yet in its map.
type member struct {
	name string
	v    Value
}

// internAfter is how many values a body must have before the parser
// starts interning: a single record gains nothing from it, a
// get_all_records response gains much.
const internAfter = 256

// syntaxErr is an internal error that wrap turns into a *DecodeError.
type syntaxErr struct {
	at    int
	what  string
	cause error
}

func (e *syntaxErr) Error() string { return e.what }

const maxInterned = 4096

func (d *Decoder) newParser(b []byte) *parser {
	return &parser{b: b, maxDepth: d.maxDepth(), maxValues: d.maxValues()}
}

func (p *parser) errAt(at int, cause error, format string, args ...any) error {
	return &syntaxErr{at: at, what: fmt.Sprintf(format, args...), cause: cause}
}

func (p *parser) eof() error {
	return &syntaxErr{at: len(p.b), what: "unexpected end of body", cause: io.ErrUnexpectedEOF}
}

func (p *parser) wrap(err error) error {
	var se *syntaxErr
	if !errors.As(err, &se) {
		return err
	}
	at := se.at
	if at > len(p.b) {
		at = len(p.b)
	}
	cause := se.cause
	if cause == nil {
		cause = ErrSyntax
	}
	return &DecodeError{Offset: int64(at), Line: 1 + bytes.Count(p.b[:at], []byte{'\n'}), What: se.what, Err: cause}
}

// found describes what is at position i, for error messages.
func (p *parser) found(i int) string {
	if i >= len(p.b) {
		return "end of body"
	}
	end := i + 24
	if end > len(p.b) {
		end = len(p.b)
	}
	return strconv.Quote(string(p.b[i:end]))
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func (p *parser) skipSpace() {
	for p.i < len(p.b) && isSpace(p.b[p.i]) {
		p.i++
	}
}

// skipMisc skips white space, comments and processing instructions.
func (p *parser) skipMisc() error {
	for {
		p.skipSpace()
		if p.i+1 < len(p.b) && p.b[p.i] == '<' && p.b[p.i+1] != '?' && p.b[p.i+1] != '!' {
			return nil // the usual case: a tag
		}
		rest := p.b[p.i:]
		switch {
		case bytes.HasPrefix(rest, []byte("<?")):
			j := bytes.Index(rest, []byte("?>"))
			if j < 0 {
				return p.eof()
			}
			p.i += j + 2
		case bytes.HasPrefix(rest, []byte("<!--")):
			j := bytes.Index(rest[4:], []byte("-->"))
			if j < 0 {
				return p.eof()
			}
			p.i += 4 + j + 3
		case bytes.HasPrefix(rest, []byte("<!")) && !bytes.HasPrefix(rest, []byte("<![CDATA[")):
			return p.errAt(p.i, nil, "document type declarations are not accepted")
		default:
			return nil
		}
	}
}

func isNameByte(c byte) bool {
	return c > ' ' && c != '>' && c != '/' && c != '<' && c != '=' && c != '"' && c != '\''
}

// open reads a start tag at the current position (after skipMisc) and
// returns its name and whether it was self-closing (<name/>). Attributes are
// skipped.
func (p *parser) open() (name []byte, selfClose bool, err error) {
	if err := p.skipMisc(); err != nil {
		return nil, false, err
	}
	if p.i >= len(p.b) {
		return nil, false, p.eof()
	}
	if p.b[p.i] != '<' || p.i+1 >= len(p.b) || p.b[p.i+1] == '/' {
		if p.i+1 >= len(p.b) {
			return nil, false, p.eof()
		}
		return nil, false, p.errAt(p.i, nil, "expected a start tag, found %s", p.found(p.i))
	}
	start := p.i + 1
	j := start
	for j < len(p.b) && isNameByte(p.b[j]) {
		j++
	}
	if j == start {
		return nil, false, p.errAt(p.i, nil, "expected a tag name, found %s", p.found(p.i))
	}
	name = p.b[start:j]
	// skip attributes
	var quote byte
	for ; j < len(p.b); j++ {
		c := p.b[j]
		if quote != 0 {
			if c == quote {
				quote = 0
			}
			continue
		}
		switch c {
		case '"', '\'':
			quote = c
		case '<':
			return nil, false, p.errAt(j, nil, "unexpected '<' inside tag <%s>", name)
		case '>':
			selfClose = p.b[j-1] == '/'
			p.i = j + 1
			return name, selfClose, nil
		}
	}
	return nil, false, p.eof()
}

// expect reads a start tag that must be called want.
func (p *parser) expect(want string) (selfClose bool, err error) {
	at := p.i
	name, sc, err := p.open()
	if err != nil {
		return false, err
	}
	if string(name) != want {
		return false, p.errAt(at, nil, "expected <%s>, found <%s>", want, name)
	}
	return sc, nil
}

// close reads the end tag </want>, after optional white space.
func (p *parser) close(want string) error {
	if err := p.skipMisc(); err != nil {
		return err
	}
	rest := p.b[p.i:]
	n := 2 + len(want)
	if len(rest) >= n && rest[0] == '<' && rest[1] == '/' && string(rest[2:n]) == want {
		j := n
		for j < len(rest) && isSpace(rest[j]) {
			j++
		}
		if j >= len(rest) {
			return p.eof()
		}
		if rest[j] == '>' {
			p.i += j + 1
			return nil
		}
	} else if len(rest) < n+1 && isPrefixOfEndTag(rest, want) {
		return p.eof()
	}
	return p.errAt(p.i, nil, "expected </%s>, found %s", want, p.found(p.i))
}

// isPrefixOfEndTag reports whether rest is a proper beginning of
// "</want>", i.e. the body was cut inside the end tag.
func isPrefixOfEndTag(rest []byte, want string) bool {
	for i, c := range rest {
		var w byte
		switch {
		case i == 0:
			w = '<'
		case i == 1:
			w = '/'
		case i-2 < len(want):
			w = want[i-2]
		default:
			w = '>'
		}
		if c != w {
			return false
		}
	}
	return true
}

// atClose reports whether the next thing (after white space) is </name.
func (p *parser) atClose(name string) bool {
	_ = p.skipMisc()
	rest := p.b[p.i:]
	return len(rest) >= 2+len(name) && rest[0] == '<' && rest[1] == '/' && string(rest[2:2+len(name)]) == name &&
		(len(rest) == 2+len(name) || rest[2+len(name)] == '>' || isSpace(rest[2+len(name)]))
}

// end checks that only white space, comments and processing instructions
// follow.
func (p *parser) end() error {
	if err := p.skipMisc(); err != nil {
		return err
	}
	if p.i != len(p.b) {
		return p.errAt(p.i, nil, "unexpected %s after the document", p.found(p.i))
	}
	return nil
}

func (p *parser) response() (Value, error) {
	if _, err := p.expectOpen("methodResponse"); err != nil {
		return nil, err
	}
	at := p.i
	name, sc, err := p.open()
	if err != nil {
		return nil, err
	}
	var v Value
	switch string(name) {
	case "params":
		if sc {
			break // no result: a void response
		}
		if p.atClose("params") {
			if err := p.close("params"); err != nil {
				return nil, err
			}
			break
		}
		if _, err := p.expectOpen("param"); err != nil {
			return nil, err
		}
		if v, err = p.value(); err != nil {
			return nil, err
		}
		if err := p.close("param"); err != nil {
			return nil, err
		}
		if err := p.close("params"); err != nil {
			return nil, err
		}
	case "fault":
		if sc {
			return nil, p.errAt(at, nil, "empty <fault/>")
		}
		fv, err := p.value()
		if err != nil {
			return nil, err
		}
		if err := p.close("fault"); err != nil {
			return nil, err
		}
		if err := p.close("methodResponse"); err != nil {
			return nil, err
		}
		if err := p.end(); err != nil {
			return nil, err
		}
		return nil, faultOf(fv)
	default:
		return nil, p.errAt(at, nil, "expected <params> or <fault>, found <%s>", name)
	}
	if err := p.close("methodResponse"); err != nil {
		return nil, err
	}
	if err := p.end(); err != nil {
		return nil, err
	}
	return v, nil
}

func faultOf(v Value) *Fault {
	f := &Fault{}
	s, _ := v.(Struct)
	switch c := s["faultCode"].(type) {
	case int64:
		f.Code = c
	case string:
		f.Code, _ = strconv.ParseInt(strings.TrimSpace(c), 10, 64)
	}
	switch m := s["faultString"].(type) {
	case string:
		f.String = m
	case nil:
	default:
		f.String = fmt.Sprint(m)
	}
	return f
}

// expectOpen is expect for elements that must not be self-closing.
func (p *parser) expectOpen(want string) (bool, error) {
	at := p.i
	sc, err := p.expect(want)
	if err != nil {
		return false, err
	}
	if sc {
		return false, p.errAt(at, nil, "unexpected empty <%s/>", want)
	}
	return false, nil
}

func (p *parser) call() (string, []Value, error) {
	if _, err := p.expectOpen("methodCall"); err != nil {
		return "", nil, err
	}
	if _, err := p.expectOpen("methodName"); err != nil {
		return "", nil, err
	}
	at := p.i
	method, err := p.text()
	if err != nil {
		return "", nil, err
	}
	method = strings.TrimSpace(method)
	if method == "" {
		return "", nil, p.errAt(at, nil, "empty <methodName>")
	}
	if !ValidMethodName(method) {
		return "", nil, p.errAt(at, nil, "bad method name %q", clip(method))
	}
	if err := p.close("methodName"); err != nil {
		return "", nil, err
	}
	var params []Value
	if !p.atClose("methodCall") {
		sc, err := p.expect("params")
		if err != nil {
			return "", nil, err
		}
		if !sc {
			params = make([]Value, 0, 4)
			for !p.atClose("params") {
				if _, err := p.expectOpen("param"); err != nil {
					return "", nil, err
				}
				v, err := p.value()
				if err != nil {
					return "", nil, err
				}
				params = append(params, v)
				if err := p.close("param"); err != nil {
					return "", nil, err
				}
			}
			if err := p.close("params"); err != nil {
				return "", nil, err
			}
		}
	}
	if err := p.close("methodCall"); err != nil {
		return "", nil, err
	}
	if err := p.end(); err != nil {
		return "", nil, err
	}
	if params == nil {
		params = []Value{}
	}
	return method, params, nil
}

// value parses <value>…</value> at the current position.
func (p *parser) value() (Value, error) {
	at := p.i
	sc, err := p.expect("value")
	if err != nil {
		return nil, err
	}
	p.values++
	if p.values > p.maxValues {
		return nil, p.errAt(at, ErrTooLarge, "more than %d values", p.maxValues)
	}
	if sc {
		return "", nil
	}
	// Untyped text (possibly empty) up to the next tag.
	start := p.i
	j := bytes.IndexByte(p.b[start:], '<')
	if j < 0 {
		return nil, p.eof()
	}
	j += start
	if p.isCloseAt(j, "value") {
		raw := p.b[start:j]
		p.i = j
		v, err := p.untyped(raw, start)
		if err != nil {
			return nil, err
		}
		if err := p.close("value"); err != nil {
			return nil, err
		}
		return v, nil
	}
	if bytes.HasPrefix(p.b[j:], []byte("<![CDATA[")) || !allSpace(p.b[start:j]) {
		// Untyped text with CDATA sections, or text followed by a tag.
		p.i = start
		s, err := p.text()
		if err != nil {
			return nil, err
		}
		if err := p.close("value"); err != nil {
			return nil, err
		}
		return s, nil
	}
	p.i = j
	v, err := p.typed()
	if err != nil {
		return nil, err
	}
	if err := p.close("value"); err != nil {
		return nil, err
	}
	return v, nil
}

// maxInternedValue is the longest untyped value that is interned: enough
// for "OpaqueRef:NULL", "false", power states, enum values and most
// numbers, too short for uuids and refs, which are unique.
const maxInternedValue = 16

// untyped returns the string value of untyped character data, sharing one
// boxed copy of short values that repeat (xapi records are full of "",
// "false", "0", "OpaqueRef:NULL", ...).
func (p *parser) untyped(raw []byte, at int) (Value, error) {
	if len(raw) > maxInternedValue || p.values < internAfter || bytes.IndexByte(raw, '&') >= 0 {
		return p.unescape(raw, at)
	}
	if p.vals == nil {
		p.vals = make(map[string]Value, 256)
	}
	if v, ok := p.vals[string(raw)]; ok {
		return v, nil
	}
	var v Value = string(raw)
	if len(p.vals) < maxInterned {
		p.vals[string(raw)] = v
	}
	return v, nil
}

func (p *parser) isCloseAt(j int, name string) bool {
	rest := p.b[j:]
	if len(rest) < 3+len(name) || rest[1] != '/' || string(rest[2:2+len(name)]) != name {
		return false
	}
	c := rest[2+len(name)]
	return c == '>' || isSpace(c)
}

func allSpace(b []byte) bool {
	for _, c := range b {
		if !isSpace(c) {
			return false
		}
	}
	return true
}

// text reads character data (with entities and CDATA sections) up to the
// next tag that is not CDATA.
func (p *parser) text() (string, error) {
	start := p.i
	j := bytes.IndexByte(p.b[start:], '<')
	if j < 0 {
		return "", p.eof()
	}
	j += start
	if !bytes.HasPrefix(p.b[j:], []byte("<![CDATA[")) {
		p.i = j
		return p.unescape(p.b[start:j], start)
	}
	var sb strings.Builder
	for {
		j := bytes.IndexByte(p.b[p.i:], '<')
		if j < 0 {
			return "", p.eof()
		}
		j += p.i
		s, err := p.unescape(p.b[p.i:j], p.i)
		if err != nil {
			return "", err
		}
		sb.WriteString(s)
		p.i = j
		if !bytes.HasPrefix(p.b[j:], []byte("<![CDATA[")) {
			return sb.String(), nil
		}
		k := bytes.Index(p.b[j+9:], []byte("]]>"))
		if k < 0 {
			return "", p.eof()
		}
		sb.Write(p.b[j+9 : j+9+k])
		p.i = j + 9 + k + 3
	}
}

// unescape turns character data into a string, resolving the five XML
// entities and numeric character references.
func (p *parser) unescape(raw []byte, at int) (string, error) {
	amp := bytes.IndexByte(raw, '&')
	if amp < 0 {
		return string(raw), nil
	}
	out := make([]byte, 0, len(raw))
	for amp >= 0 {
		out = append(out, raw[:amp]...)
		at += amp
		raw = raw[amp:]
		semi := bytes.IndexByte(raw, ';')
		if semi < 0 || semi > 12 {
			return "", p.errAt(at, nil, "unterminated entity reference")
		}
		ent := raw[1:semi]
		switch string(ent) {
		case "lt":
			out = append(out, '<')
		case "gt":
			out = append(out, '>')
		case "amp":
			out = append(out, '&')
		case "quot":
			out = append(out, '"')
		case "apos":
			out = append(out, '\'')
		default:
			if len(ent) < 2 || ent[0] != '#' {
				return "", p.errAt(at, nil, "unknown entity &%s;", ent)
			}
			var n uint64
			var err error
			if ent[1] == 'x' || ent[1] == 'X' {
				n, err = strconv.ParseUint(string(ent[2:]), 16, 32)
			} else {
				n, err = strconv.ParseUint(string(ent[1:]), 10, 32)
			}
			if err != nil || n > utf8.MaxRune || !utf8.ValidRune(rune(n)) {
				return "", p.errAt(at, nil, "bad character reference &%s;", ent)
			}
			out = utf8.AppendRune(out, rune(n))
		}
		raw = raw[semi+1:]
		at += semi + 1
		amp = bytes.IndexByte(raw, '&')
	}
	out = append(out, raw...)
	return string(out), nil
}

// scalar reads the text of a typed scalar element <name>text</name>.
func (p *parser) scalar(name string, selfClose bool) (string, error) {
	if selfClose {
		return "", nil
	}
	s, err := p.text()
	if err != nil {
		return "", err
	}
	if err := p.close(name); err != nil {
		return "", err
	}
	return s, nil
}

// typed parses the typed element inside a <value>.
func (p *parser) typed() (Value, error) {
	at := p.i
	nameB, sc, err := p.open()
	if err != nil {
		return nil, err
	}
	name := string(nameB)
	switch name {
	case "string":
		return p.scalar(name, sc)
	case "int", "i4", "i8", "ex:i8", "i2", "i1":
		s, err := p.scalar(name, sc)
		if err != nil {
			return nil, err
		}
		n, perr := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if perr != nil {
			return nil, p.errAt(at, nil, "bad <%s> %q", name, clip(s))
		}
		return n, nil
	case "boolean":
		s, err := p.scalar(name, sc)
		if err != nil {
			return nil, err
		}
		switch strings.TrimSpace(s) {
		case "1", "true":
			return true, nil
		case "0", "false":
			return false, nil
		}
		return nil, p.errAt(at, nil, "bad <boolean> %q", clip(s))
	case "double", "float":
		s, err := p.scalar(name, sc)
		if err != nil {
			return nil, err
		}
		f, perr := strconv.ParseFloat(strings.TrimSpace(s), 64)
		if perr != nil {
			var ne *strconv.NumError
			if !errors.As(perr, &ne) || ne.Err != strconv.ErrRange {
				return nil, p.errAt(at, nil, "bad <double> %q", clip(s))
			}
		}
		return f, nil
	case "dateTime.iso8601":
		s, err := p.scalar(name, sc)
		if err != nil {
			return nil, err
		}
		t, perr := ParseDateTime(s)
		if perr != nil {
			return nil, p.errAt(at, nil, "bad <dateTime.iso8601> %q", clip(s))
		}
		return t, nil
	case "base64":
		s, err := p.scalar(name, sc)
		if err != nil {
			return nil, err
		}
		b, perr := decodeBase64(s)
		if perr != nil {
			return nil, p.errAt(at, nil, "bad <base64>: %v", perr)
		}
		return b, nil
	case "nil", "ex:nil":
		if !sc {
			if err := p.close(name); err != nil {
				return nil, err
			}
		}
		return nil, nil
	case "struct":
		if sc {
			return Struct{}, nil
		}
		return p.structBody(at)
	case "array":
		if sc {
			return Array{}, nil
		}
		return p.arrayBody(at)
	}
	return nil, p.errAt(at, nil, "unknown value type <%s>", clip(name))
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func (p *parser) enter(at int) error {
	p.depth++
	if p.depth > p.maxDepth {
		return p.errAt(at, ErrTooDeep, "values nest deeper than %d levels", p.maxDepth)
	}
	return nil
}

// structBody parses the members of a <struct> onto p.members, then moves
// them into a map of the right size: no map grows member by member, and an
// empty struct costs no buckets.
func (p *parser) structBody(at int) (Value, error) {
	if err := p.enter(at); err != nil {
		return nil, err
	}
	base := p.members.len()
	for !p.atClose("struct") {
		m, err := p.member()
		if err != nil {
			return nil, err
		}
		p.members.push(m)
	}
	if err := p.close("struct"); err != nil {
		return nil, err
	}
	p.depth--
	m := make(Struct, p.members.len()-base)
	for i := base; i < p.members.len(); i++ {
		e := p.members.at(i)
		m[e.name] = e.v // duplicate names: the last one wins
	}
	p.members.truncate(base)
	return m, nil
}

// member parses one <member><name>…</name><value>…</value></member>.
func (p *parser) member() (member, error) {
	if _, err := p.expectOpen("member"); err != nil {
		return member{}, err
	}
	sc, err := p.expect("name")
	if err != nil {
		return member{}, err
	}
	var m member
	if !sc {
		if m.name, err = p.memberName(); err != nil {
			return member{}, err
		}
		if err := p.close("name"); err != nil {
			return member{}, err
		}
	}
	if m.v, err = p.value(); err != nil {
		return member{}, err
	}
	if err := p.close("member"); err != nil {
		return member{}, err
	}
	return m, nil
}

// memberName reads a member name, interning it: xapi repeats the same few
// hundred field names in every record.
func (p *parser) memberName() (string, error) {
	start := p.i
	j := bytes.IndexByte(p.b[start:], '<')
	if j < 0 {
		return "", p.eof()
	}
	raw := p.b[start : start+j]
	if bytes.IndexByte(raw, '&') >= 0 || bytes.HasPrefix(p.b[start+j:], []byte("<![CDATA[")) {
		return p.text()
	}
	p.i = start + j
	if p.values < internAfter {
		return string(raw), nil
	}
	if p.names == nil {
		p.names = make(map[string]string, 256)
	}
	if s, ok := p.names[string(raw)]; ok {
		return s, nil
	}
	s := string(raw)
	if len(p.names) < maxInterned {
		p.names[s] = s
	}
	return s, nil
}

// arrayBody parses the elements of an <array> onto p.elems, then copies
// them into an Array of the right size.
func (p *parser) arrayBody(at int) (Value, error) {
	if err := p.enter(at); err != nil {
		return nil, err
	}
	base := p.elems.len()
	if !p.atClose("array") {
		sc, err := p.expect("data")
		if err != nil {
			return nil, err
		}
		if !sc {
			for !p.atClose("data") {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				p.elems.push(v)
			}
			if err := p.close("data"); err != nil {
				return nil, err
			}
		}
	}
	if err := p.close("array"); err != nil {
		return nil, err
	}
	p.depth--
	n := p.elems.len() - base
	if n == 0 {
		return p.emptyArray(), nil
	}
	a := make(Array, n)
	for i := range a {
		a[i] = p.elems.at(base + i)
	}
	p.elems.truncate(base)
	return a, nil
}

// emptyArray returns the parse's one boxed empty Array: boxing a slice
// allocates, and appending to an empty Array copies it anyway.
func (p *parser) emptyArray() Value {
	if p.emptyArr == nil {
		p.emptyArr = Array{}
	}
	return p.emptyArr
}

// chunkLen is how many items a stack chunk holds.
const chunkLen = 256

// stack holds the items of the containers being parsed, innermost last, in
// fixed-size chunks that are reused for the whole body: a container's
// items are copied out once it is closed, so nothing is allocated twice
// the way append's growth does.
type stack[T any] struct {
	chunks [][]T
	n      int
}

func (s *stack[T]) len() int { return s.n }

func (s *stack[T]) push(v T) {
	c := s.n / chunkLen
	if c == len(s.chunks) {
		s.chunks = append(s.chunks, make([]T, chunkLen))
	}
	s.chunks[c][s.n%chunkLen] = v
	s.n++
}

func (s *stack[T]) at(i int) T { return s.chunks[i/chunkLen][i%chunkLen] }

// truncate drops the items from n on, clearing them for the collector.
func (s *stack[T]) truncate(n int) {
	var zero T
	for i := n; i < s.n; i++ {
		s.chunks[i/chunkLen][i%chunkLen] = zero
	}
	s.n = n
}

// ParseDateTime parses an XML-RPC dateTime.iso8601 the way xapi writes and
// reads it: 20060102T15:04:05 followed by Z, ±hh:mm, ±hhmm or nothing (then
// UTC), optionally with fractional seconds; the hyphenated form
// 2006-01-02T15:04:05 is accepted too.
func ParseDateTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	layouts := [...]string{
		"20060102T15:04:05Z07:00",
		"20060102T15:04:05Z0700",
		"20060102T15:04:05",
		"2006-01-02T15:04:05Z07:00",
		"2006-01-02T15:04:05",
		"20060102T150405Z07:00",
		"20060102T150405",
	}
	var firstErr error
	for _, l := range layouts {
		t, err := time.Parse(l, s)
		if err == nil {
			return t, nil
		}
		if firstErr == nil {
			firstErr = err
		}
	}
	return time.Time{}, firstErr
}

func decodeBase64(s string) ([]byte, error) {
	clean := make([]byte, 0, len(s))
	for i := 0; i < len(s); i++ {
		if !isSpace(s[i]) {
			clean = append(clean, s[i])
		}
	}
	out := make([]byte, base64.StdEncoding.DecodedLen(len(clean)))
	n, err := base64.StdEncoding.Decode(out, clean)
	if err != nil {
		return nil, err
	}
	return out[:n], nil
}

// ValidMethodName reports whether s is a method name XML-RPC allows: one or
// more of A-Z, a-z, 0-9, underscore, dot, colon and slash.
func ValidMethodName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '.' || c == ':' || c == '/') {
			return false
		}
	}
	return true
}
