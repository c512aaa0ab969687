package mailparse_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/ferry-migrate/ferry/internal/mailparse"
	"github.com/ferry-migrate/ferry/internal/testenv/mimecorpus"
)

// Every message of the project's corpus reads exactly as expected: subject, addresses, body text,
// and every attachment's name, type, size and SHA-256.
func TestCorpusReadsAsExpected(t *testing.T) {
	dir, exp := mimecorpus.Load(t)
	for name, want := range exp {
		t.Run(name, func(t *testing.T) {
			f, err := os.Open(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			type got struct {
				part mailparse.Part
				size int64
				sum  string
			}
			var parts []got
			msg, err := mailparse.Read(f, 1<<20, func(p mailparse.Part, r io.Reader) error {
				h := sha256.New()
				n, err := io.Copy(h, r)
				if err != nil && !mailparse.Tolerable(err) {
					return err
				}
				parts = append(parts, got{p, n, hex.EncodeToString(h.Sum(nil))})
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			mimecorpus.Check(t, want, mimecorpus.Reading{Subject: msg.Header.Subject, From: mimecorpus.Pairs(msg.Header.From), To: mimecorpus.Pairs(msg.Header.To), Body: msg.Body, Attachments: func() []mimecorpus.Attachment {
				var out []mimecorpus.Attachment
				for _, p := range parts {
					out = append(out, mimecorpus.Attachment{Name: p.part.Name, ContentType: p.part.ContentType, Size: p.size, SHA256: p.sum})
				}
				return out
			}()})
		})
	}
}
