package xmlrpc

import (
	"encoding/base64"
	"fmt"
	"io"
	"math"
	"reflect"
	"sort"
	"strconv"
	"time"
	"unicode/utf8"
)

// EncodeError reports a Go value the encoder cannot write.
type EncodeError struct {
	Path string // where in the value, e.g. "param 2.other_config"
	Type string // the Go type
}

// Error implements error.
func (e *EncodeError) Error() string {
	return fmt.Sprintf("xmlrpc: cannot encode %s at %s", e.Type, e.Path)
}

// maxEncodeDepth stops the encoder on cyclic or absurdly deep values.
const maxEncodeDepth = 256

const xmlHeader = "<?xml version=\"1.0\"?>\n"

// AppendCall appends a methodCall document to dst.
func AppendCall(dst []byte, method string, params []Value) ([]byte, error) {
	if !ValidMethodName(method) {
		return nil, &EncodeError{Path: "methodName", Type: "method name " + strconv.Quote(method)}
	}
	dst = append(dst, xmlHeader...)
	dst = append(dst, "<methodCall><methodName>"...)
	dst = appendEscaped(dst, method)
	dst = append(dst, "</methodName><params>"...)
	var err error
	for i, v := range params {
		dst = append(dst, "<param>"...)
		if dst, err = appendValue(dst, v, 0, func() string { return "param " + strconv.Itoa(i) }); err != nil {
			return nil, err
		}
		dst = append(dst, "</param>"...)
	}
	dst = append(dst, "</params></methodCall>\n"...)
	return dst, nil
}

// AppendResponse appends a methodResponse document carrying v to dst.
func AppendResponse(dst []byte, v Value) ([]byte, error) {
	dst = append(dst, xmlHeader...)
	dst = append(dst, "<methodResponse><params><param>"...)
	var err error
	if dst, err = appendValue(dst, v, 0, func() string { return "result" }); err != nil {
		return nil, err
	}
	dst = append(dst, "</param></params></methodResponse>\n"...)
	return dst, nil
}

// AppendFault appends a methodResponse carrying a <fault> to dst.
func AppendFault(dst []byte, code int64, msg string) []byte {
	dst = append(dst, xmlHeader...)
	dst = append(dst, "<methodResponse><fault><value><struct><member><name>faultCode</name><value><int>"...)
	dst = strconv.AppendInt(dst, code, 10)
	dst = append(dst, "</int></value></member><member><name>faultString</name><value>"...)
	dst = appendEscaped(dst, msg)
	dst = append(dst, "</value></member></struct></value></fault></methodResponse>\n"...)
	return dst
}

// EncodeCall writes a methodCall document to w in one Write.
func EncodeCall(w io.Writer, method string, params []Value) error {
	b, err := AppendCall(nil, method, params)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// EncodeResponse writes a methodResponse document carrying v to w in one
// Write.
func EncodeResponse(w io.Writer, v Value) error {
	b, err := AppendResponse(nil, v)
	if err != nil {
		return err
	}
	_, err = w.Write(b)
	return err
}

// EncodeFault writes a <fault> methodResponse to w.
func EncodeFault(w io.Writer, code int64, msg string) error {
	_, err := w.Write(AppendFault(nil, code, msg))
	return err
}

// AppendValue appends <value>…</value> for v to dst.
func AppendValue(dst []byte, v Value) ([]byte, error) {
	return appendValue(dst, v, 0, func() string { return "value" })
}

// EncodeValueString returns "<value>…</value>" for v, the form xapi stores
// in task.result.
func EncodeValueString(v Value) (string, error) {
	b, err := AppendValue(nil, v)
	return string(b), err
}

func appendValue(dst []byte, v Value, depth int, path func() string) ([]byte, error) {
	if depth > maxEncodeDepth {
		return nil, &EncodeError{Path: path(), Type: "value nested too deeply"}
	}
	var err error
	switch x := v.(type) {
	case nil:
		return append(dst, "<value><nil/></value>"...), nil
	case string:
		dst = append(dst, "<value>"...)
		dst = appendEscaped(dst, x)
		return append(dst, "</value>"...), nil
	case bool:
		if x {
			return append(dst, "<value><boolean>1</boolean></value>"...), nil
		}
		return append(dst, "<value><boolean>0</boolean></value>"...), nil
	case int64:
		return appendInt(dst, x), nil
	case int:
		return appendInt(dst, int64(x)), nil
	case int32:
		return appendInt(dst, int64(x)), nil
	case float64:
		return appendDouble(dst, x), nil
	case time.Time:
		dst = append(dst, "<value><dateTime.iso8601>"...)
		dst = x.UTC().AppendFormat(dst, "20060102T15:04:05Z")
		return append(dst, "</dateTime.iso8601></value>"...), nil
	case []byte:
		dst = append(dst, "<value><base64>"...)
		dst = base64.StdEncoding.AppendEncode(dst, x)
		return append(dst, "</base64></value>"...), nil
	case Struct:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, "<value><struct>"...)
		for _, k := range keys {
			dst = appendMemberName(dst, k)
			if dst, err = appendValue(dst, x[k], depth+1, subPath(path, k)); err != nil {
				return nil, err
			}
			dst = append(dst, "</member>"...)
		}
		return append(dst, "</struct></value>"...), nil
	case map[string]string:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		dst = append(dst, "<value><struct>"...)
		for _, k := range keys {
			dst = appendMemberName(dst, k)
			dst = append(dst, "<value>"...)
			dst = appendEscaped(dst, x[k])
			dst = append(dst, "</value></member>"...)
		}
		return append(dst, "</struct></value>"...), nil
	case Array:
		dst = append(dst, "<value><array><data>"...)
		for i, e := range x {
			if dst, err = appendValue(dst, e, depth+1, subPath(path, strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		return append(dst, "</data></array></value>"...), nil
	case []string:
		dst = append(dst, "<value><array><data>"...)
		for _, e := range x {
			dst = append(dst, "<value>"...)
			dst = appendEscaped(dst, e)
			dst = append(dst, "</value>"...)
		}
		return append(dst, "</data></array></value>"...), nil
	}
	return appendReflect(dst, reflect.ValueOf(v), depth, path)
}

// appendReflect handles named types (refs, enums, maps keyed by enums,
// slices of refs) and the remaining numeric kinds.
func appendReflect(dst []byte, rv reflect.Value, depth int, path func() string) ([]byte, error) {
	var err error
	switch rv.Kind() {
	case reflect.String:
		dst = append(dst, "<value>"...)
		dst = appendEscaped(dst, rv.String())
		return append(dst, "</value>"...), nil
	case reflect.Bool:
		return appendValue(dst, rv.Bool(), depth, path)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(dst, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		u := rv.Uint()
		if u > math.MaxInt64 {
			return nil, &EncodeError{Path: path(), Type: rv.Type().String() + " value above 2^63-1"}
		}
		return appendInt(dst, int64(u)), nil
	case reflect.Float32, reflect.Float64:
		return appendDouble(dst, rv.Float()), nil
	case reflect.Interface, reflect.Pointer:
		if rv.IsNil() {
			return append(dst, "<value><nil/></value>"...), nil
		}
		return appendValue(dst, rv.Elem().Interface(), depth+1, path)
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.Type().Elem().Kind() == reflect.Uint8 {
			return appendValue(dst, rv.Bytes(), depth, path)
		}
		dst = append(dst, "<value><array><data>"...)
		for i := 0; i < rv.Len(); i++ {
			if dst, err = appendValue(dst, rv.Index(i).Interface(), depth+1, subPath(path, strconv.Itoa(i))); err != nil {
				return nil, err
			}
		}
		return append(dst, "</data></array></value>"...), nil
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String {
			return nil, &EncodeError{Path: path(), Type: rv.Type().String()}
		}
		keys := rv.MapKeys()
		sort.Slice(keys, func(i, j int) bool { return keys[i].String() < keys[j].String() })
		dst = append(dst, "<value><struct>"...)
		for _, k := range keys {
			dst = appendMemberName(dst, k.String())
			if dst, err = appendValue(dst, rv.MapIndex(k).Interface(), depth+1, subPath(path, k.String())); err != nil {
				return nil, err
			}
			dst = append(dst, "</member>"...)
		}
		return append(dst, "</struct></value>"...), nil
	}
	t := "invalid value"
	if rv.IsValid() {
		t = rv.Type().String()
	}
	return nil, &EncodeError{Path: path(), Type: t}
}

func subPath(path func() string, elem string) func() string {
	return func() string { return path() + "." + elem }
}

func appendMemberName(dst []byte, k string) []byte {
	dst = append(dst, "<member><name>"...)
	dst = appendEscaped(dst, k)
	return append(dst, "</name>"...)
}

func appendInt(dst []byte, n int64) []byte {
	dst = append(dst, "<value><int>"...)
	dst = strconv.AppendInt(dst, n, 10)
	return append(dst, "</int></value>"...)
}

func appendDouble(dst []byte, f float64) []byte {
	dst = append(dst, "<value><double>"...)
	switch {
	case math.IsNaN(f):
		dst = append(dst, "nan"...)
	case math.IsInf(f, 1):
		dst = append(dst, "inf"...)
	case math.IsInf(f, -1):
		dst = append(dst, "-inf"...)
	default:
		dst = strconv.AppendFloat(dst, f, 'g', -1, 64)
	}
	return append(dst, "</double></value>"...)
}

// appendEscaped writes s as XML character data: < > & " escaped, CR as a
// character reference (so that XML line-end normalisation keeps it),
// control characters XML 1.0 cannot carry dropped, and invalid UTF-8
// replaced by U+FFFD.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '<' && c != '>' && c != '&' && c != '"' {
			i++
			continue
		}
		var rep string
		width := 1
		switch {
		case c == '<':
			rep = "&lt;"
		case c == '>':
			rep = "&gt;"
		case c == '&':
			rep = "&amp;"
		case c == '"':
			rep = "&quot;"
		case c == '\r':
			rep = "&#13;"
		case c == '\n' || c == '\t':
			i++
			continue
		case c < 0x20:
			rep = ""
		default:
			r, w := utf8.DecodeRuneInString(s[i:])
			width = w
			switch {
			case r == utf8.RuneError && w == 1:
				rep = "\uFFFD"
			case r == 0xFFFE || r == 0xFFFF:
				rep = ""
			default:
				i += w
				continue
			}
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, rep...)
		i += width
		last = i
	}
	return append(dst, s[last:]...)
}
