package mailparse

import (
	"io"
	"strings"
	"testing"
)

// An image of a multipart/related with a Content-ID is inline even without a
// Content-Disposition, and the part handed to Save says so; one marked attachment is not.
func TestRelatedImagesAreInline(t *testing.T) {
	msg := strings.ReplaceAll(`Subject: related
MIME-Version: 1.0
Content-Type: multipart/related; boundary="r"

--r
Content-Type: text/html

<img src="cid:a@x"><img src="cid:b@x">
--r
Content-Type: image/gif
Content-ID: <a@x>
Content-Transfer-Encoding: base64

R0lGODlhAQABAAAAACw=
--r
Content-Type: image/gif
Content-ID: <b@x>
Content-Disposition: attachment; filename="b.gif"
Content-Transfer-Encoding: base64

R0lGODlhAQABAAAAACw=
--r--
`, "\n", "\r\n")
	var saved []Part
	m, err := Read(strings.NewReader(msg), 1<<20, func(p Part, r io.Reader) error {
		io.Copy(io.Discard, r)
		saved = append(saved, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if m.Body == nil || !m.Body.HTML || len(saved) != 2 || !saved[0].Inline || saved[0].ContentID != "a@x" || saved[1].Inline {
		t.Fatalf("body %+v, saved %+v; want the HTML body, a@x inline, b.gif not", m.Body, saved)
	}
}
