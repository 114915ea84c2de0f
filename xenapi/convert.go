package xenapi

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// This file turns decoded XML-RPC values into typed results and typed
// records into values to send. xapi sends strings, refs, enums and int64
// untyped (as strings); the conversions accept both the string form and the
// typed XML-RPC form.

func typeErr(path, want string, got any) error {
	return &TypeError{Path: path, Want: want, Got: xmlrpc.TypeName(got)}
}

func asString(v any, path string) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case int64:
		return strconv.FormatInt(x, 10), nil
	case bool:
		return strconv.FormatBool(x), nil
	case float64:
		return strconv.FormatFloat(x, 'g', -1, 64), nil
	case nil:
		return "", nil
	}
	return "", typeErr(path, "string", v)
}

func asInt64(v any, path string) (int64, error) {
	switch x := v.(type) {
	case int64:
		return x, nil
	case string:
		n, err := strconv.ParseInt(strings.TrimSpace(x), 10, 64)
		if err != nil {
			return 0, &TypeError{Path: path, Want: "int", Got: "string " + strconv.Quote(clip(x))}
		}
		return n, nil
	}
	return 0, typeErr(path, "int", v)
}

func asFloat64(v any, path string) (float64, error) {
	switch x := v.(type) {
	case float64:
		return x, nil
	case int64:
		return float64(x), nil
	case string:
		f, err := strconv.ParseFloat(strings.TrimSpace(x), 64)
		if err != nil {
			return 0, &TypeError{Path: path, Want: "double", Got: "string " + strconv.Quote(clip(x))}
		}
		return f, nil
	}
	return 0, typeErr(path, "double", v)
}

func asBool(v any, path string) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		switch strings.ToLower(strings.TrimSpace(x)) {
		case "true", "1":
			return true, nil
		case "false", "0":
			return false, nil
		}
		return false, &TypeError{Path: path, Want: "boolean", Got: "string " + strconv.Quote(clip(x))}
	case int64:
		return x != 0, nil
	}
	return false, typeErr(path, "boolean", v)
}

func asTime(v any, path string) (time.Time, error) {
	switch x := v.(type) {
	case time.Time:
		return x, nil
	case string:
		if x == "" {
			return time.Time{}, nil
		}
		t, err := xmlrpc.ParseDateTime(x)
		if err != nil {
			return time.Time{}, &TypeError{Path: path, Want: "dateTime", Got: "string " + strconv.Quote(clip(x))}
		}
		return t, nil
	}
	return time.Time{}, typeErr(path, "dateTime", v)
}

func clip(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

func decodeString[T ~string](v any, err error, path string) (T, error) {
	if err != nil {
		return "", err
	}
	s, err := asString(v, path)
	return T(s), err
}

func decodeInt64(v any, err error, path string) (int64, error) {
	if err != nil {
		return 0, err
	}
	return asInt64(v, path)
}

func decodeFloat64(v any, err error, path string) (float64, error) {
	if err != nil {
		return 0, err
	}
	return asFloat64(v, path)
}

func decodeBool(v any, err error, path string) (bool, error) {
	if err != nil {
		return false, err
	}
	return asBool(v, path)
}

func decodeStrings[T ~string](v any, err error, path string) ([]T, error) {
	if err != nil {
		return nil, err
	}
	a, ok := v.([]any)
	if !ok {
		return nil, typeErr(path, "array", v)
	}
	out := make([]T, len(a))
	for i, e := range a {
		s, err := asString(e, path+"["+strconv.Itoa(i)+"]")
		if err != nil {
			return nil, err
		}
		out[i] = T(s)
	}
	return out, nil
}

func decodeStringMap[K ~string, V ~string](v any, err error, path string) (map[K]V, error) {
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, typeErr(path, "struct", v)
	}
	out := make(map[K]V, len(m))
	for k, e := range m {
		s, err := asString(e, path+"."+k)
		if err != nil {
			return nil, err
		}
		out[K(k)] = V(s)
	}
	return out, nil
}

func decodeRecord[T any](v any, err error, path string) (T, error) {
	var rec T
	if err != nil {
		return rec, err
	}
	if err := decodeInto(&rec, v, path); err != nil {
		var zero T
		return zero, err
	}
	return rec, nil
}

func decodeRecordMap[K ~string, T any](v any, err error, path string) (map[K]T, error) {
	if err != nil {
		return nil, err
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, typeErr(path, "struct", v)
	}
	var zero T
	plan := planOf(reflect.TypeOf(zero))
	out := make(map[K]T, len(m))
	for k, e := range m {
		var rec T
		if err := decodeStruct(reflect.ValueOf(&rec).Elem(), plan, e, ""); err != nil {
			return nil, prefixPath(err, path+"["+k+"]")
		}
		out[K(k)] = rec
	}
	return out, nil
}

// fieldPlan is how one struct field maps to a xapi member.
type fieldPlan struct {
	name      string
	index     int
	readOnly  bool
	omitEmpty bool
}

// planOf lists the xapi-tagged fields of a record type. It is cheap
// (a tag parse per field) and computed once per decoded response.
func planOf(t reflect.Type) []fieldPlan {
	plan := make([]fieldPlan, 0, t.NumField())
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("xapi")
		if tag == "" || tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		fp := fieldPlan{name: name, index: i}
		for opts != "" {
			var o string
			o, opts, _ = strings.Cut(opts, ",")
			switch o {
			case "ro":
				fp.readOnly = true
			case "omitempty":
				fp.omitEmpty = true
			}
		}
		plan = append(plan, fp)
	}
	return plan
}

// decodeInto decodes v into the record *dst.
func decodeInto(dst any, v any, path string) error {
	rv := reflect.ValueOf(dst)
	if rv.Kind() != reflect.Pointer || rv.IsNil() || rv.Elem().Kind() != reflect.Struct {
		return fmt.Errorf("xenapi: decode into %T: need a pointer to a record", dst)
	}
	return decodeStruct(rv.Elem(), planOf(rv.Elem().Type()), v, path)
}

func decodeStruct(rv reflect.Value, plan []fieldPlan, v any, path string) error {
	m, ok := v.(map[string]any)
	if !ok {
		return typeErr(path, "struct", v)
	}
	for _, fp := range plan {
		e, ok := m[fp.name]
		if !ok || e == nil {
			continue
		}
		if err := decodeField(rv.Field(fp.index), e, ""); err != nil {
			return prefixPath(err, path+"."+fp.name)
		}
	}
	return nil
}

// prefixPath puts prefix in front of the path of a *TypeError made deeper
// down (paths are built only when something fails).
func prefixPath(err error, prefix string) error {
	if te, ok := err.(*TypeError); ok {
		return &TypeError{Path: prefix + te.Path, Want: te.Want, Got: te.Got}
	}
	return fmt.Errorf("%s: %w", prefix, err)
}

var timeType = reflect.TypeOf(time.Time{})

// decodeField decodes v into the field f, by f's kind.
func decodeField(f reflect.Value, v any, path string) error {
	if f.CanAddr() {
		// Fast paths for the most common field types, without reflection.
		switch p := f.Addr().Interface().(type) {
		case *string:
			s, err := asString(v, path)
			*p = s
			return err
		case *int64:
			n, err := asInt64(v, path)
			*p = n
			return err
		case *bool:
			b, err := asBool(v, path)
			*p = b
			return err
		case *map[string]string:
			m, err := decodeStringMap[string, string](v, nil, path)
			*p = m
			return err
		case *[]string:
			a, err := decodeStrings[string](v, nil, path)
			*p = a
			return err
		}
	}
	if f.Type() == timeType {
		t, err := asTime(v, path)
		if err != nil {
			return err
		}
		f.Set(reflect.ValueOf(t))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		s, err := asString(v, path)
		if err != nil {
			return err
		}
		f.SetString(s)
	case reflect.Int64:
		n, err := asInt64(v, path)
		if err != nil {
			return err
		}
		f.SetInt(n)
	case reflect.Float64:
		x, err := asFloat64(v, path)
		if err != nil {
			return err
		}
		f.SetFloat(x)
	case reflect.Bool:
		b, err := asBool(v, path)
		if err != nil {
			return err
		}
		f.SetBool(b)
	case reflect.Slice:
		a, ok := v.([]any)
		if !ok {
			return typeErr(path, "array", v)
		}
		s := reflect.MakeSlice(f.Type(), len(a), len(a))
		elemIsStruct := f.Type().Elem().Kind() == reflect.Struct && f.Type().Elem() != timeType
		var plan []fieldPlan
		if elemIsStruct {
			plan = planOf(f.Type().Elem())
		}
		for i, e := range a {
			var err error
			if elemIsStruct {
				err = decodeStruct(s.Index(i), plan, e, "")
			} else {
				err = decodeField(s.Index(i), e, "")
			}
			if err != nil {
				return prefixPath(err, path+"["+strconv.Itoa(i)+"]")
			}
		}
		f.Set(s)
	case reflect.Map:
		m, ok := v.(map[string]any)
		if !ok {
			return typeErr(path, "struct", v)
		}
		if f.Type().Key().Kind() != reflect.String {
			return fmt.Errorf("xenapi: %s: unsupported map key type %s", path, f.Type().Key())
		}
		if f.Type().Elem().Kind() == reflect.Interface {
			f.Set(reflect.ValueOf(m).Convert(f.Type()))
			return nil
		}
		out := reflect.MakeMapWithSize(f.Type(), len(m))
		et := f.Type().Elem()
		kt := f.Type().Key()
		if et.Kind() == reflect.String && kt.Kind() == reflect.String {
			// The common case (other_config, platform, blocked_operations):
			// no reflect.New per element.
			for k, e := range m {
				str, err := asString(e, "")
				if err != nil {
					return prefixPath(err, path+"."+k)
				}
				out.SetMapIndex(reflect.ValueOf(k).Convert(kt), reflect.ValueOf(str).Convert(et))
			}
			f.Set(out)
			return nil
		}
		for k, e := range m {
			ev := reflect.New(et).Elem()
			if err := decodeField(ev, e, ""); err != nil {
				return prefixPath(err, path+"."+k)
			}
			out.SetMapIndex(reflect.ValueOf(k).Convert(kt), ev)
		}
		f.Set(out)
	case reflect.Interface:
		f.Set(reflect.ValueOf(v))
	default:
		return fmt.Errorf("xenapi: %s: unsupported field type %s", path, f.Type())
	}
	return nil
}

// wireArg turns a call argument into what goes on the wire: integers of
// any kind as decimal strings (xapi's ints are int64 and its documentation
// asks for strings), also inside lists and maps, records as structs.
func wireArg(a any) any {
	switch x := a.(type) {
	case int64:
		return strconv.FormatInt(x, 10)
	case string, bool, float64, nil, []byte:
		return a
	}
	rv := reflect.ValueOf(a)
	switch rv.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return strconv.FormatInt(rv.Int(), 10)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return strconv.FormatUint(rv.Uint(), 10)
	case reflect.Struct:
		if rv.Type() != timeType {
			return recordToStruct(rv)
		}
	case reflect.Slice, reflect.Array:
		if !mayHoldInts(rv.Type()) {
			return a // e.g. []VDIRef or []byte: nothing to convert
		}
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = wireArg(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		if rv.Type().Key().Kind() != reflect.String || !mayHoldInts(rv.Type()) {
			return a // the encoder reports keys it cannot write
		}
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[it.Key().String()] = wireArg(it.Value().Interface())
		}
		return out
	}
	return a
}

// mayHoldInts reports whether a value of type t may be or contain an
// integer that wireArg must turn into a string.
func mayHoldInts(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.String, reflect.Bool, reflect.Float32, reflect.Float64:
		return false
	case reflect.Slice:
		if t.Elem().Kind() == reflect.Uint8 {
			return false // []byte goes as base64
		}
		return mayHoldInts(t.Elem())
	case reflect.Array:
		return mayHoldInts(t.Elem())
	case reflect.Map:
		return mayHoldInts(t.Elem())
	case reflect.Struct:
		return t != timeType
	}
	return true
}

// recordToStruct encodes a record for create calls; see records.go for the
// tag rules.
func recordToStruct(rv reflect.Value) map[string]any {
	out := make(map[string]any)
	for _, fp := range planOf(rv.Type()) {
		if fp.readOnly {
			continue
		}
		f := rv.Field(fp.index)
		if fp.omitEmpty && f.IsZero() {
			continue
		}
		out[fp.name] = wireField(f)
	}
	return out
}

func wireField(f reflect.Value) any {
	if f.Type() == timeType {
		return f.Interface()
	}
	switch f.Kind() {
	case reflect.String:
		return f.String()
	case reflect.Int64:
		return strconv.FormatInt(f.Int(), 10)
	case reflect.Float64:
		return f.Float()
	case reflect.Bool:
		return f.Bool()
	case reflect.Slice:
		a := make([]any, f.Len())
		for i := range a {
			a[i] = wireField(f.Index(i))
		}
		return a
	case reflect.Map:
		m := make(map[string]any, f.Len())
		it := f.MapRange()
		for it.Next() {
			m[it.Key().String()] = wireField(it.Value())
		}
		return m
	case reflect.Struct:
		return recordToStruct(f)
	case reflect.Interface:
		if f.IsNil() {
			return nil
		}
		return f.Elem().Interface()
	}
	return f.Interface()
}
