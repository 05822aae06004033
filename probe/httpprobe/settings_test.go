package httpprobe

import (
	"net/netip"
	"net/url"
	"reflect"
	"strings"
	"testing"

	"github.com/vantage-probe/vantage/probe"
)

// settingsKeyIgnores are the options that do not shape the shared
// settings, each with why. Every other field of Options, and of the
// probe.TLSOptions and probe.Net in it, must change the key.
var settingsKeyIgnores = map[string]string{
	// The prober's own (urlString, and the host its TLS config
	// names). Only its credentials go into the shared request headers:
	// settingsKeyOf takes them apart (TestSettingsKeyHasURLCredentials).
	"URL": "per prober",
}

// Probers share settings when their keys are equal, so an option the key
// does not see would make targets configured differently share one
// target's checks, headers or trust. Each field, down to the fields of
// nested option structs and of list elements, is set in turn to a value
// other than its zero, and the key must change.
func TestSettingsKeyConsidersEveryOption(t *testing.T) {
	var o Options
	seen := map[string]bool{}
	var vary func(prefix string, v reflect.Value)
	vary = func(prefix string, v reflect.Value) {
		base := settingsKeyOf(&o, nil)
		for i := range v.NumField() {
			f, fv := v.Type().Field(i), v.Field(i)
			name := prefix + f.Name
			seen[name] = true
			switch {
			case ownStruct(f.Type):
				vary(name+".", fv)
				continue
			case f.Type.Kind() == reflect.Slice && ownStruct(f.Type.Elem()):
				// A list of one zero element, then each of the element's
				// fields in turn.
				fv.Set(reflect.MakeSlice(f.Type, 1, 1))
				if settingsKeyOf(&o, nil) == base {
					t.Errorf("%s: a list of one element has the key of an empty list", name)
				}
				vary(name+"[0].", fv.Index(0))
				fv.SetZero()
				continue
			}
			fv.Set(nonZero(t, name, f.Type))
			changed := settingsKeyOf(&o, nil) != base
			fv.SetZero()
			why, ignored := settingsKeyIgnores[name]
			switch {
			case !changed && !ignored:
				t.Errorf("%s does not change the settings key: put it in settingsKey, or in settingsKeyIgnores with why", name)
			case changed && ignored:
				t.Errorf("%s changes the settings key, yet settingsKeyIgnores says %q", name, why)
			}
		}
	}
	vary("", reflect.ValueOf(&o).Elem())
	for name := range settingsKeyIgnores {
		if !seen[name] {
			t.Errorf("settingsKeyIgnores names %s, which Options does not have", name)
		}
	}
	for _, name := range []string{"TLS.CAFile", "Net.Resolver", "FailIfHeaderMatches[0].AllowMissing", "JSON[0].Value"} {
		if !seen[name] {
			t.Errorf("the test never varied %s", name)
		}
	}
}

// ownStruct reports whether t is a struct of this module's, whose fields
// the test varies one by one; other structs (netip.Addr) are values.
func ownStruct(t reflect.Type) bool {
	return t.Kind() == reflect.Struct && strings.HasPrefix(t.PkgPath(), "github.com/vantage-probe/vantage/")
}

// nonZero returns a value of type typ other than its zero value.
func nonZero(t *testing.T, name string, typ reflect.Type) reflect.Value {
	v := reflect.New(typ).Elem()
	switch typ.Kind() {
	case reflect.String:
		v.SetString("x")
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		v.SetInt(1)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		v.SetUint(1)
	case reflect.Float32, reflect.Float64:
		v.SetFloat(1)
	case reflect.Slice:
		v = reflect.Append(v, nonZero(t, name, typ.Elem()))
	case reflect.Map:
		v = reflect.MakeMap(typ)
		v.SetMapIndex(nonZero(t, name, typ.Key()), nonZero(t, name, typ.Elem()))
	case reflect.Pointer:
		v = reflect.New(typ.Elem())
	case reflect.Interface:
		v.Set(reflect.ValueOf("x"))
	case reflect.Struct:
		if typ != reflect.TypeFor[netip.Addr]() {
			t.Fatalf("%s: no non-zero %v known: teach nonZero one", name, typ)
		}
		v.Set(reflect.ValueOf(netip.MustParseAddr("192.0.2.1")))
	default:
		t.Fatalf("%s: no non-zero %v known: teach nonZero one", name, typ)
	}
	return v
}

// The URL is the prober's own, but the credentials in it go into the
// shared request headers: probers whose URLs differ only in them must not
// share settings.
func TestSettingsKeyHasURLCredentials(t *testing.T) {
	s := probe.NewShared()
	build := func(u string) *Prober {
		t.Helper()
		p, err := NewShared(Options{URL: u}, s)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	plain, plain2 := build("http://127.0.0.1:1/a"), build("http://127.0.0.1:2/b")
	if plain.settings != plain2.settings {
		t.Errorf("probers differing only in URL do not share settings")
	}
	ann, bob, bob2 := build("http://ann:pw@127.0.0.1:1/"), build("http://bob:pw@127.0.0.1:1/"), build("http://bob:pw2@127.0.0.1:1/")
	if ann.settings == bob.settings || bob.settings == bob2.settings || ann.settings == plain.settings {
		t.Errorf("probers whose URLs carry different credentials share settings")
	}
	if got := bob.header.Get("Authorization"); got == ann.header.Get("Authorization") || got == "" {
		t.Errorf("Authorization %q: want bob's own", got)
	}
	if k := settingsKeyOf(&Options{}, url.UserPassword("a", "b")); k == settingsKeyOf(&Options{}, url.User("a")) {
		t.Errorf("a URL password does not change the key")
	}
}

// Lists that hold the same items in other groupings are other lists.
func TestSettingsKeyListsAreUnambiguous(t *testing.T) {
	for _, pair := range [][2]Options{
		{{FailIfBodyMatches: []string{"a,b"}}, {FailIfBodyMatches: []string{"a", "b"}}},
		{{FailIfBodyMatches: []string{"ab", ""}}, {FailIfBodyMatches: []string{"a", "b"}}},
		{{Headers: map[string]string{"A": "b:c"}}, {Headers: map[string]string{"A:b": "c"}}},
		{{FailIfHeaderMatches: []HeaderMatch{{Header: "A", Regex: "b"}}}, {FailIfHeaderMatches: []HeaderMatch{{Header: "Ab"}}}},
		{{JSON: []JSONCondition{{Path: "n", Op: JSONEquals, Value: 1}}}, {JSON: []JSONCondition{{Path: "n", Op: JSONEquals, Value: "1"}}}},
		{{ValidStatus: []int{200, 1}}, {ValidStatus: []int{2001}}},
	} {
		if settingsKeyOf(&pair[0], nil) == settingsKeyOf(&pair[1], nil) {
			t.Errorf("%+v and %+v have one key", pair[0], pair[1])
		}
	}
}
