package exo

import (
	"context"
	"strings"

	"github.com/ferry-migrate/ferry/internal/connector"
	"github.com/ferry-migrate/ferry/internal/graph"
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

// tree lists every folder of the mailbox, parents before children, from one folder delta query
// (a page or a few for the whole tree) instead of one listing per folder.
func (m *mailbox) tree(ctx context.Context) ([]node, error) {
	var all []graph.MailboxFolder
	folders, _ := m.c.MailboxFoldersDelta(ctx, m.mbxID, "")
	for f, err := range folders {
		if err != nil {
			return nil, err
		}
		all = append(all, f)
	}
	known := map[string]bool{}
	for _, f := range all {
		known[f.ID] = true
	}
	kids := map[string][]graph.MailboxFolder{} // parent id ("" for the top) -> children, in the service's order
	for _, f := range all {
		parent := f.ParentFolderID
		if !known[parent] {
			parent = "" // the root folder, which the tree does not list
		}
		kids[parent] = append(kids[parent], f)
	}
	var out []node
	var walk func(parent, prefix string)
	walk = func(parent, prefix string) {
		for _, f := range kids[parent] {
			n := node{id: f.ID, parent: parent, path: prefix + pathPart(f.DisplayName), class: f.Type, count: f.TotalItemCount}
			out = append(out, n)
			walk(f.ID, n.path+"/")
		}
	}
	walk("", "")
	return out, nil
}

// folder turns a node into the engine's folder.
func (n node) folder() connector.Folder {
	f := connector.Folder{Path: n.path, Messages: n.count, Class: n.class}
	if !strings.Contains(n.path, "/") {
		f.Role = roles[n.path]
	}
	return f
}
