package exo

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkDecompose takes apart every message of the project's MIME corpus, and a 200 KB text
// message like BenchmarkIMAPToExchange's, as the MIME path to Exchange does for each message.
func BenchmarkDecompose(b *testing.B) {
	files, _ := filepath.Glob("../../../testdata/mime/*.eml")
	var msgs [][]byte
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			b.Fatal(err)
		}
		msgs = append(msgs, data)
	}
	var big bytes.Buffer
	big.WriteString("Message-ID: <bench@ferry.test>\r\nSubject: bench\r\nFrom: a@ferry.test\r\nMIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n")
	for big.Len() < 200<<10 {
		big.WriteString("Zeile mit Umlauten äöü und etwas mehr Text, damit sie lang genug wird.\r\n")
	}
	msgs = append(msgs, big.Bytes())
	var total int64
	for _, m := range msgs {
		total += int64(len(m))
	}
	b.SetBytes(total)
	b.ResetTimer()
	for range b.N {
		for _, m := range msgs {
			d, err := decompose(bytes.NewReader(m), int64(len(m)), time.Time{}, nil)
			if err != nil {
				b.Fatal(err)
			}
			d.Close()
		}
	}
}
