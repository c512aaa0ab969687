package exo

import (
	"context"
	"strings"

	"github.com/ferry-migrate/ferry/internal/connector"
)

// node is one folder of a mailbox's tree.
type node struct {
	id, parent, path, class string
	count                   int
}

// roles are the top-level folders every Exchange mailbox has, by their English names.
var roles = map[string]string{"Inbox": "inbox", "Sent Items": "sent", "Drafts": "drafts", "Deleted Items": "trash", "Junk Email": "junk", "Archive": "archive"}

// isMail says whether a folder class holds mail: IPF.Note and its subclasses.
func isMail(class string) bool {
	return class == "" || class == "IPF.Note" || strings.HasPrefix(class, "IPF.Note.")
}

// pathPart keeps a folder name from splitting the "/" path: Exchange allows "/" in names.
func pathPart(name string) string { return strings.ReplaceAll(name, "/", "∕") }

// tree lists every folder of the mailbox, parents before children.
func (m *mailbox) tree(ctx context.Context) ([]node, error) {
	var out []node
	var walk func(parent, prefix string) error
	walk = func(parent, prefix string) error {
		folders, _ := m.c.MailboxFolders(ctx, m.mbxID, parent)
		var kids []node
		for f, err := range folders {
			if err != nil {
				return err
			}
			kids = append(kids, node{id: f.ID, parent: parent, path: prefix + pathPart(f.DisplayName), class: f.Type, count: f.TotalItemCount})
		}
		for _, k := range kids {
			out = append(out, k)
			if err := walk(k.id, k.path+"/"); err != nil {
				return err
			}
		}
		return nil
	}
	return out, walk("", "")
}

// folder turns a node into the engine's folder.
func (n node) folder() connector.Folder {
	f := connector.Folder{Path: n.path, Messages: n.count, Class: n.class}
	if !strings.Contains(n.path, "/") {
		f.Role = roles[n.path]
	}
	return f
}
