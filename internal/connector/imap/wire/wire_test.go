package wire

import (
	"fmt"
	"testing"
)

func TestAppendUIDs(t *testing.T) {
	for line, want := range map[string]string{
		"B3 OK [APPENDUID 38505 3955:3957,3960] Append completed.": "[3955 3956 3957 3960]",
		"B4 OK [APPENDUID 1 7] done":                               "[7]",
		"B5 OK [appenduid 1 9:8] done":                             "[8 9]",
	} {
		got, err := appendUIDs(line)
		if err != nil || fmt.Sprint(got) != want {
			t.Errorf("appendUIDs(%q) = %v, %v; want %s", line, got, err, want)
		}
	}
	for _, line := range []string{"B6 OK done", "B7 OK [APPENDUID 1] x", "B8 OK [APPENDUID 1 x:3] y", "B9 OK [APPENDUID 1 0] z"} {
		if got, err := appendUIDs(line); err == nil {
			t.Errorf("appendUIDs(%q) = %v, want an error", line, got)
		}
	}
}

func TestModifiedUTF7(t *testing.T) {
	for in, want := range map[string]string{
		"INBOX":              "INBOX",
		"Clients & Partners": "Clients &- Partners",
		"Отчёты":             "&BB4EQgRHBFEEQgRL-",
		"Archiv/日本語/x":       "Archiv/&ZeVnLIqe-/x",
		"Team [internal]":    "Team [internal]",
	} {
		if got := UTF7(in); got != want {
			t.Errorf("UTF7(%q) = %q, want %q", in, got, want)
		}
	}
	if got := Quote(`a"b\c`); got != `"a\"b\\c"` {
		t.Errorf("quote = %s", got)
	}
}
