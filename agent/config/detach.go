package config

import (
	"reflect"
	"strings"
	"unsafe"
)

// ownPkgs prefixes the packages whose types detach walks into: the
// config's own and the probers' option types. Others (time.Location,
// netip.Addr, net.Resolver) hold no string of the file's text.
const ownPkgs = "github.com/vantage-probe/vantage/"

// detach gives every string of cfg its own memory, one copy per distinct
// string. Decoded strings are slices of the file's whole text, so a config
// kept for months kept all of that text alive for its names and URLs (1.7
// MB at 10k targets, against 0.6 MB of copies); and equal strings (types,
// label values, host names) now share one copy. Maps are rebuilt, once
// each, so maps the loader shares stay shared.
func detach(cfg *Config) {
	d := detacher{strs: map[string]string{}, ptrs: map[unsafe.Pointer]bool{}, maps: map[unsafe.Pointer]reflect.Value{}}
	d.value(reflect.ValueOf(cfg).Elem())
}

type detacher struct {
	strs map[string]string
	ptrs map[unsafe.Pointer]bool          // pointers already walked
	maps map[unsafe.Pointer]reflect.Value // map -> its rebuilt copy
}

func (d *detacher) str(s string) string {
	if s == "" {
		return s
	}
	if c, ok := d.strs[s]; ok {
		return c
	}
	c := strings.Clone(s)
	d.strs[c] = c
	return c
}

// value detaches the strings of v, which is addressable.
func (d *detacher) value(v reflect.Value) {
	switch v.Kind() {
	case reflect.String:
		v.SetString(d.str(v.String()))
	case reflect.Interface:
		// A JSON condition's value: a string in it is the file's text too.
		if !v.IsNil() && v.Elem().Kind() == reflect.String {
			v.Set(reflect.ValueOf(d.str(v.Elem().String())))
		}
	case reflect.Pointer:
		if v.IsNil() || !strings.HasPrefix(v.Type().Elem().PkgPath(), ownPkgs) {
			return
		}
		if p := v.UnsafePointer(); !d.ptrs[p] {
			d.ptrs[p] = true
			d.value(v.Elem())
		}
	case reflect.Struct:
		if !strings.HasPrefix(v.Type().PkgPath(), ownPkgs) {
			return
		}
		for i := range v.NumField() {
			d.value(writable(v.Field(i))) // unexported fields too
		}
	case reflect.Slice:
		for i := range v.Len() {
			d.value(v.Index(i))
		}
	case reflect.Array:
		for i := range v.Len() {
			d.value(v.Index(i))
		}
	case reflect.Map:
		if v.IsNil() {
			return
		}
		p := v.UnsafePointer()
		m, ok := d.maps[p]
		if !ok {
			m = reflect.MakeMapWithSize(v.Type(), v.Len())
			for it := v.MapRange(); it.Next(); {
				k := reflect.New(v.Type().Key()).Elem()
				k.Set(it.Key())
				e := reflect.New(v.Type().Elem()).Elem()
				e.Set(it.Value())
				d.value(k)
				d.value(e)
				m.SetMapIndex(k, e)
			}
			d.maps[p] = m
		}
		v.Set(m)
	}
}

// writable returns v, addressable, as settable even when it is an
// unexported field (the config's own): what is reached through it is then
// settable too.
func writable(v reflect.Value) reflect.Value {
	if v.CanSet() {
		return v
	}
	return reflect.NewAt(v.Type(), unsafe.Pointer(v.UnsafeAddr())).Elem()
}
