package main

import (
	"strings"
	"testing"
)

// Flag handling only: bad values are usage errors, reported before any
// agent or farm starts (the lab itself is tested in package lab).
func TestLabCommandRejectsBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-interval", "500ms"}, `interval "500ms"`},
		{[]string{"-quick", "-timeout", "5s"}, `timeout "5s": must be above zero and below interval (5s)`},
		{[]string{"-gossip", "lan"}, `gossip "lan"`},
		{[]string{"-quorum", "4"}, "min regions 4"},
		{[]string{"-outages", "-3"}, "outages -3"},
		{[]string{"extra"}, `unexpected argument "extra"`},
		{[]string{"-log-level", "loud"}, `-log-level "loud"`},
	} {
		var out, errb strings.Builder
		code := runLab(t.Context(), c.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("vantage lab %v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), exitUsage, c.want)
		}
		if out.Len() != 0 {
			t.Errorf("vantage lab %v printed a report: %q", c.args, out.String())
		}
	}
	var out, errb strings.Builder
	if code := runLab(t.Context(), []string{"-h"}, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "-markdown") {
		t.Errorf("vantage lab -h: exit %d, usage %q", code, errb.String())
	}
}

// vantage lab -netns: flags only (the lab itself is tested in package
// netlab); a bad scenario is a usage error reported before anything runs.
func TestLabNetnsCommandRejectsBadFlags(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"-netns", "-scenarios", "outage,bogus"}, `scenario "bogus": unknown`},
		{[]string{"-netns", "extra"}, `unexpected argument "extra"`},
		{[]string{"-netns", "-hold", "soon"}, `invalid value "soon"`},
	} {
		var out, errb strings.Builder
		code := runLab(t.Context(), c.args, &out, &errb)
		if code != exitUsage || !strings.Contains(errb.String(), c.want) {
			t.Errorf("vantage lab %v: exit %d, stderr %q; want %d and %q", c.args, code, errb.String(), exitUsage, c.want)
		}
	}
	var out, errb strings.Builder
	if code := runLab(t.Context(), []string{"-netns", "-h"}, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "-scenarios") {
		t.Errorf("vantage lab -netns -h: exit %d, usage %q", code, errb.String())
	}
	if code := runLab(t.Context(), []string{"-h"}, &out, &errb); code != exitOK || !strings.Contains(errb.String(), "-netns") {
		t.Errorf("vantage lab -h does not mention -netns: %q", errb.String())
	}
}
