package imap

import (
	"sort"
	"strings"

	"github.com/emersion/go-imap/v2"
)

// Folder roles, as the engine and targets understand them.
const (
	RoleInbox   = "inbox"
	RoleSent    = "sent"
	RoleDrafts  = "drafts"
	RoleTrash   = "trash"
	RoleJunk    = "junk"
	RoleArchive = "archive"
)

var specialUse = map[imap.MailboxAttr]string{
	imap.MailboxAttrSent: RoleSent, imap.MailboxAttrDrafts: RoleDrafts, imap.MailboxAttrTrash: RoleTrash,
	imap.MailboxAttrJunk: RoleJunk, imap.MailboxAttrArchive: RoleArchive,
}

// localNames are the usual names of the well-known folders in English, German, French, Spanish,
// Italian, Dutch and Portuguese (Outlook's, Gmail's and the common webmail ones), lower case.
var localNames = map[string]string{}

func init() {
	for role, names := range map[string][]string{
		RoleSent: {"sent", "sent items", "sent messages", "sent mail", "[gmail]/sent mail", "gesendet", "gesendete objekte", "gesendete elemente",
			"gesendete nachrichten", "envoyés", "éléments envoyés", "messages envoyés", "envoyes", "enviados", "elementos enviados", "correo enviado",
			"posta inviata", "inviata", "elementi inviati", "inviati", "verzonden", "verzonden items", "verzonden berichten", "itens enviados", "enviadas", "mensagens enviadas"},
		RoleDrafts: {"drafts", "[gmail]/drafts", "entwürfe", "entwurf", "brouillons", "borradores", "bozze", "concepten", "rascunhos"},
		RoleTrash: {"trash", "deleted items", "deleted messages", "bin", "[gmail]/trash", "[gmail]/bin", "gelöschte objekte", "gelöschte elemente", "papierkorb",
			"corbeille", "éléments supprimés", "papelera", "elementos eliminados", "cestino", "posta eliminata", "elementi eliminati", "prullenbak",
			"verwijderde items", "lixeira", "itens excluídos", "itens eliminados", "reciclagem", "lixo"},
		RoleJunk: {"junk", "junk e-mail", "junk email", "junk mail", "spam", "[gmail]/spam", "junk-e-mail", "unerwünscht", "courrier indésirable", "pourriel",
			"indésirables", "correo no deseado", "no deseado", "posta indesiderata", "indesiderata", "ongewenste e-mail", "ongewenste mail", "lixo eletrônico",
			"e-mail de lixo", "lixo electrónico", "correio não solicitado"},
		RoleArchive: {"archive", "archives", "archiv", "archivio", "archivo", "archief", "arquivo", "[gmail]/all mail"},
	} {
		for _, n := range names {
			localNames[n] = role
		}
	}
}

// roleOf returns a folder's well-known role from its SPECIAL-USE attributes (special is true),
// else from its name.
func roleOf(path string, attrs []imap.MailboxAttr) (role string, special bool) {
	if strings.EqualFold(path, "INBOX") {
		return RoleInbox, true
	}
	for _, a := range attrs {
		for k, r := range specialUse {
			if strings.EqualFold(string(k), string(a)) {
				return r, true
			}
		}
	}
	lower := strings.ToLower(path)
	if r, ok := localNames[lower]; ok {
		return r, false
	}
	// Only a top-level folder (or a child of INBOX, as some servers nest them) carries a role.
	if parent, leaf, ok := strings.Cut(lower, "/"); ok && parent == "inbox" && !strings.Contains(leaf, "/") {
		return localNames[leaf], false
	}
	return "", false
}

// settleRoles leaves each role on one folder, the same one on every run: a folder that has it by
// SPECIAL-USE wins over one named like it, and among equals the first path in sorted order. The
// others become plain folders, so a "Entwürfe" beside a SPECIAL-USE \Drafts is its own folder.
func settleRoles(folders map[string]*folderInfo) {
	paths := make([]string, 0, len(folders))
	for p := range folders {
		paths = append(paths, p)
	}
	sort.Slice(paths, func(i, j int) bool {
		a, b := folders[paths[i]], folders[paths[j]]
		if a.special != b.special {
			return a.special
		}
		return paths[i] < paths[j]
	})
	taken := map[string]bool{}
	for _, p := range paths {
		fi := folders[p]
		if fi.role == "" {
			continue
		}
		if taken[fi.role] {
			fi.role, fi.special = "", false
			continue
		}
		taken[fi.role] = true
	}
}

// canonical turns a server mailbox name into Ferry's folder path, "/" between levels. A "/" inside
// a level (possible when the server's separator is another character) becomes "∕" so the levels
// stay distinct.
func canonical(name string, delim rune) string {
	if delim == 0 || delim == '/' {
		return name
	}
	parts := strings.Split(name, string(delim))
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, "/", "∕")
	}
	return strings.Join(parts, "/")
}

// serverName turns a folder path back into a mailbox name with the server's separator; a
// separator character inside a level becomes "_".
func serverName(path string, delim rune) string {
	if delim == 0 || delim == '/' {
		return path
	}
	parts := strings.Split(path, "/")
	for i, p := range parts {
		parts[i] = strings.ReplaceAll(p, string(delim), "_")
	}
	return strings.Join(parts, string(delim))
}
