package config

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Sentinel errors. Every Error wraps one of them, so callers and tests can
// ask errors.Is(err, config.ErrDuplicate) of what Load returns.
var (
	ErrSyntax      = errors.New("TOML syntax error")
	ErrUnknownKey  = errors.New("unknown key")
	ErrType        = errors.New("wrong value type")
	ErrRequired    = errors.New("required key missing")
	ErrInvalid     = errors.New("invalid value")
	ErrDuration    = errors.New("invalid duration")
	ErrRegex       = errors.New("invalid regular expression")
	ErrDuplicate   = errors.New("duplicate target name")
	ErrUnknownType = errors.New("unknown target type")
	ErrConflict    = errors.New("conflicting settings")
	ErrImpossible  = errors.New("impossible setting")
	ErrLabel       = errors.New("invalid label")
	ErrInclude     = errors.New("include failed")
	ErrSecret      = errors.New("secret unavailable")
	ErrUnreachable = errors.New("unreachable glob")
	ErrTimeZone    = errors.New("unknown time zone")
	ErrUnsupported = errors.New("unsupported setting")
)

// Error is one problem in a config file: where, which key, what.
type Error struct {
	Pos   Pos
	Field string // the key, e.g. `target["api"].http.body_regex`, `cluster.bind`
	Msg   string
	// Err is the sentinel the problem is an instance of (see ErrDuplicate
	// and friends), for errors.Is.
	Err error
}

// Error formats the problem as FILE:LINE:COL: field: message, or
// FILE: field: message when TOML gives no position.
func (e Error) Error() string {
	var b strings.Builder
	if p := e.Pos.String(); p != "" {
		b.WriteString(p)
		b.WriteString(": ")
	}
	if e.Field != "" {
		b.WriteString(e.Field)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns the sentinel.
func (e Error) Unwrap() error { return e.Err }

// String formats p as FILE:LINE:COL, FILE:LINE or FILE; "" for the zero Pos.
func (p Pos) String() string {
	switch {
	case p.Line > 0 && p.Col > 0:
		return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
	case p.Line > 0:
		return fmt.Sprintf("%s:%d", p.File, p.Line)
	}
	return p.File
}

// Errors is every problem found in a config, reported at once.
type Errors []Error

// Error prints one problem per line, sorted by file, then line and column.
func (e Errors) Error() string {
	s := slices.Clone(e)
	s.sort()
	lines := make([]string, len(s))
	for i, x := range s {
		lines[i] = x.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap exposes each Error, so errors.Is and errors.As see every problem.
func (e Errors) Unwrap() []error {
	out := make([]error, len(e))
	for i, x := range e {
		out[i] = x
	}
	return out
}

// sort orders problems by file, line and column; problems without a line
// come first in their file. Stable, so one line's problems keep the order
// in which validation found them.
func (e Errors) sort() {
	slices.SortStableFunc(e, func(a, b Error) int {
		return cmp.Or(
			cmp.Compare(a.Pos.File, b.Pos.File),
			cmp.Compare(a.Pos.Line, b.Pos.Line),
			cmp.Compare(a.Pos.Col, b.Pos.Col))
	})
}

// collector gathers problems while validation carries on.
type collector struct {
	errs Errors
}

func (c *collector) add(sentinel error, pos Pos, field, format string, args ...any) {
	c.errs = append(c.errs, Error{Pos: pos, Field: field, Msg: fmt.Sprintf(format, args...), Err: sentinel})
}

// err returns the problems as an error, nil when there are none.
func (c *collector) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	c.errs.sort()
	return c.errs
}
