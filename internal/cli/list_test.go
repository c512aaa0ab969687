package cli

import (
	"encoding/json"
	"sort"
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// listCommands finds every command that lists something ("List …" in its short help), with its
// path from the root, so a new list command is checked without editing this test.
func listCommands(c *cobra.Command, path []string) [][]string {
	var out [][]string
	for _, s := range c.Commands() {
		p := append(append([]string(nil), path...), s.Name())
		if strings.HasPrefix(s.Short, "List ") {
			out = append(out, p)
		}
		out = append(out, listCommands(s, p)...)
	}
	return out
}

// Every list command prints a JSON array with -o json, "[]" when there is nothing to list; never
// null, which scripts trip over.
func TestEveryListPrintsAnArrayInJSON(t *testing.T) {
	url := startServer(t, t.TempDir())
	if code, out, errs := run(t, adminPW+"\n", "login", "--server", url, "--user", "admin", "--password-stdin"); code != 0 {
		t.Fatalf("login: exit %d: %s %s", code, out, errs)
	}
	// What an empty server already holds: the admin, and the token `ferry login` made.
	nonEmpty := map[string]int{"user list": 1, "token list": 1}
	listAll := func(project bool) map[string]string {
		got := map[string]string{}
		for _, path := range listCommands(NewRoot(), nil) {
			cmd, _, _ := NewRoot().Find(path)
			args := append([]string(nil), path...)
			if strings.Contains(cmd.Use, "PROJECT") {
				if !project {
					continue
				}
				args = append(args, "empty")
			}
			code, out, errs := run(t, "", append(args, "-o", "json")...)
			if code != 0 {
				t.Fatalf("%s -o json: exit %d: %s", strings.Join(args, " "), code, errs)
			}
			got[strings.Join(path, " ")] = out
		}
		return got
	}
	check := func(name, out string) {
		t.Helper()
		var arr []json.RawMessage
		if err := json.Unmarshal([]byte(out), &arr); err != nil || arr == nil {
			t.Errorf("%s -o json printed %q, want a JSON array", name, strings.TrimSpace(out))
			return
		}
		if want := nonEmpty[name]; len(arr) != want {
			t.Errorf("%s -o json: %d entries, want %d: %s", name, len(arr), want, out)
		}
		if nonEmpty[name] == 0 && strings.TrimSpace(out) != "[]" {
			t.Errorf("%s -o json printed %q, want []", name, strings.TrimSpace(out))
		}
	}
	before := listAll(false)
	for name, out := range before {
		check(name, out)
	}
	for _, s := range [][]string{
		{"endpoint", "add", "a", "--kind", "memory", "--host", "list-a"},
		{"endpoint", "add", "b", "--kind", "memory", "--host", "list-b"},
		{"project", "create", "empty", "--workload", "mailbox", "--source", "a", "--target", "b"},
	} {
		if code, out, errs := run(t, "", s...); code != 0 {
			t.Fatalf("%v: exit %d: %s %s", s, code, out, errs)
		}
	}
	after := listAll(true)
	var names []string
	for name, out := range after {
		if _, ok := before[name]; !ok {
			check(name, out)
			names = append(names, name)
		}
	}
	sort.Strings(names)
	// The project's own lists; a new one is picked up by listCommands, and then belongs here.
	if strings.Join(names, ", ") != "agent devices, agent token list, items list" {
		t.Errorf("project list commands checked: %v", names)
	}
	if len(before) != 4 {
		t.Errorf("server-wide list commands checked: %v", before)
	}
}
