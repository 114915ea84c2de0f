package xenapitest

import (
	"fmt"
	"strings"

	"github.com/xenflow/xenflow/xenapi/internal/xmlrpc"
)

// whereExpr is a parsed get_all_records_where expression, in xapi's
// database filter language: field "name"="value", and, or, not,
// parentheses, true, false.
type whereExpr interface {
	eval(o *object) bool
}

type whereField struct{ name, value string }
type whereAnd struct{ l, r whereExpr }
type whereOr struct{ l, r whereExpr }
type whereNot struct{ e whereExpr }
type whereConst bool

func (e whereField) eval(o *object) bool {
	name := strings.ReplaceAll(e.name, "__", "_")
	v, ok := o.f[name]
	if !ok {
		return false
	}
	return xmlrpc.ScalarString(v) == e.value
}
func (e whereAnd) eval(o *object) bool { return e.l.eval(o) && e.r.eval(o) }
func (e whereOr) eval(o *object) bool  { return e.l.eval(o) || e.r.eval(o) }
func (e whereNot) eval(o *object) bool { return !e.e.eval(o) }
func (e whereConst) eval(*object) bool { return bool(e) }

type whereParser struct {
	toks []string
	i    int
}

func parseWhere(s string) (whereExpr, error) {
	toks, err := whereTokens(s)
	if err != nil {
		return nil, err
	}
	wp := &whereParser{toks: toks}
	e, err := wp.or()
	if err != nil {
		return nil, err
	}
	if wp.i != len(wp.toks) {
		return nil, whereErr(s)
	}
	return e, nil
}

func whereErr(s string) error {
	return fail(ErrInternalError, fmt.Sprintf("Db_filter_types.Expression_error(%q)", s))
}

func whereTokens(s string) ([]string, error) {
	var toks []string
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '(' || c == ')' || c == '=':
			toks = append(toks, string(c))
			i++
		case c == '"':
			j := strings.IndexByte(s[i+1:], '"')
			if j < 0 {
				return nil, whereErr(s)
			}
			toks = append(toks, s[i:i+j+2])
			i += j + 2
		default:
			j := i
			for j < len(s) && s[j] != ' ' && s[j] != '(' && s[j] != ')' && s[j] != '=' && s[j] != '"' {
				j++
			}
			toks = append(toks, strings.ToLower(s[i:j]))
			i = j
		}
	}
	return toks, nil
}

func (wp *whereParser) peek() string {
	if wp.i < len(wp.toks) {
		return wp.toks[wp.i]
	}
	return ""
}

func (wp *whereParser) next() string {
	t := wp.peek()
	wp.i++
	return t
}

func (wp *whereParser) or() (whereExpr, error) {
	l, err := wp.and()
	for err == nil && wp.peek() == "or" {
		wp.next()
		var r whereExpr
		if r, err = wp.and(); err == nil {
			l = whereOr{l, r}
		}
	}
	return l, err
}

func (wp *whereParser) and() (whereExpr, error) {
	l, err := wp.unary()
	for err == nil && wp.peek() == "and" {
		wp.next()
		var r whereExpr
		if r, err = wp.unary(); err == nil {
			l = whereAnd{l, r}
		}
	}
	return l, err
}

func (wp *whereParser) unary() (whereExpr, error) {
	bad := whereErr(strings.Join(wp.toks, " "))
	switch t := wp.next(); t {
	case "not":
		e, err := wp.unary()
		return whereNot{e}, err
	case "(":
		e, err := wp.or()
		if err != nil {
			return nil, err
		}
		if wp.next() != ")" {
			return nil, bad
		}
		return e, nil
	case "true":
		return whereConst(true), nil
	case "false":
		return whereConst(false), nil
	case "field":
		name, eq, value := wp.next(), wp.next(), wp.next()
		if !isQuoted(name) || eq != "=" || !isQuoted(value) {
			return nil, bad
		}
		return whereField{name: name[1 : len(name)-1], value: value[1 : len(value)-1]}, nil
	}
	return nil, bad
}

func isQuoted(s string) bool { return len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' }
