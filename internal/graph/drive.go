package graph

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// OneDrive and SharePoint document libraries: drives and their items.

// Drive is microsoft.graph.drive.
type Drive struct {
	ID        string `json:"id"`
	DriveType string `json:"driveType"` // personal, business, documentLibrary
	Name      string `json:"name,omitempty"`
}

// DriveItem is the part of microsoft.graph.driveItem a migration reads.
type DriveItem struct {
	ID              string `json:"id"`
	Name            string `json:"name"`
	Size            int64  `json:"size"`
	ETag            string `json:"eTag,omitempty"`
	CTag            string `json:"cTag,omitempty"`
	ParentReference *struct {
		DriveID string `json:"driveId,omitempty"`
		ID      string `json:"id,omitempty"`
		Path    string `json:"path,omitempty"`
	} `json:"parentReference,omitempty"`
	File *struct {
		MimeType string `json:"mimeType,omitempty"`
		Hashes   struct {
			QuickXorHash string `json:"quickXorHash,omitempty"`
		} `json:"hashes"`
	} `json:"file,omitempty"`
	Folder *struct {
		ChildCount int `json:"childCount"`
	} `json:"folder,omitempty"`
	Root           *struct{}       `json:"root,omitempty"`
	FileSystemInfo *FileSystemInfo `json:"fileSystemInfo,omitempty"`
	Deleted        *struct {
		State string `json:"state,omitempty"`
	} `json:"deleted,omitempty"`
	DownloadURL string `json:"@microsoft.graph.downloadUrl,omitempty"`
}

// FileSystemInfo holds a file's own dates, which an upload may set.
type FileSystemInfo struct {
	CreatedDateTime      *time.Time `json:"createdDateTime,omitempty"`
	LastModifiedDateTime *time.Time `json:"lastModifiedDateTime,omitempty"`
}

// MaxSimpleUpload is the largest file one PUT may carry; larger ones need an upload session.
const MaxSimpleUpload = 250 << 20

// DriveChunk is the size of each upload-session PUT: a multiple of 320 KiB, as OneDrive
// requires of every chunk but the last.
const DriveChunk = 32 * 320 << 10

// UserDrive returns a user's OneDrive.
func (c *Client) UserDrive(ctx context.Context, user string) (Drive, error) {
	var d Drive
	_, err := c.Do(ctx, Request{Method: http.MethodGet, Path: "/users/" + url.PathEscape(user) + "/drive"}, &d)
	return d, err
}

// DriveDelta starts (link "") or continues a delta query over a whole drive.
func (c *Client) DriveDelta(ctx context.Context, driveID, link string) (func(yield func(DriveItem, error) bool), func() string) {
	if link == "" {
		link = "/drives/" + url.PathEscape(driveID) + "/root/delta"
	}
	return All[DriveItem](ctx, c, link)
}

// DriveChildren lists a folder's items.
func (c *Client) DriveChildren(ctx context.Context, driveID, folderID string) (func(yield func(DriveItem, error) bool), func() string) {
	return All[DriveItem](ctx, c, "/drives/"+url.PathEscape(driveID)+"/items/"+url.PathEscape(folderID)+"/children")
}

// Download streams a file's content from its pre-authenticated download URL, which must not be
// sent the token.
func (c *Client) Download(ctx context.Context, it DriveItem) (io.ReadCloser, error) {
	if it.DownloadURL == "" {
		return nil, fmt.Errorf("graph: item %s has no download URL", it.ID)
	}
	return c.Stream(ctx, Request{Method: http.MethodGet, Path: it.DownloadURL, NoAuth: true})
}

func itemPath(driveID, parentID, name string) string {
	return "/drives/" + url.PathEscape(driveID) + "/items/" + url.PathEscape(parentID) + ":/" + url.PathEscape(name) + ":"
}

// CreateDriveFolder creates a folder under a parent; an existing one of that name is an error
// (409), which callers resolve by listing.
func (c *Client) CreateDriveFolder(ctx context.Context, driveID, parentID, name string) (DriveItem, error) {
	var it DriveItem
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/drives/" + url.PathEscape(driveID) + "/items/" + url.PathEscape(parentID) + "/children",
		Body: map[string]any{"name": name, "folder": map[string]any{}, "@microsoft.graph.conflictBehavior": "fail"}}, &it)
	return it, err
}

// UploadSmall replaces or creates a file in one PUT (at most MaxSimpleUpload; Ferry sends files
// under one DriveChunk this way and larger ones through UploadLarge).
func (c *Client) UploadSmall(ctx context.Context, driveID, parentID, name string, data []byte) (DriveItem, error) {
	var it DriveItem
	_, err := c.Do(ctx, Request{Method: http.MethodPut, Path: itemPath(driveID, parentID, name) + "/content", Body: data, Content: "application/octet-stream"}, &it)
	return it, err
}

// UploadLarge uploads a file through an upload session in DriveChunk pieces, streamed from r, with
// its dates; it resumes from the service's nextExpectedRanges when a chunk is refused as out of
// order.
func (c *Client) UploadLarge(ctx context.Context, driveID, parentID, name string, size int64, fsi *FileSystemInfo, r io.ReaderAt) (DriveItem, error) {
	item := map[string]any{"@microsoft.graph.conflictBehavior": "replace"}
	if fsi != nil {
		item["fileSystemInfo"] = fsi
	}
	var s UploadSession
	if _, err := c.Do(ctx, Request{Method: http.MethodPost, Path: itemPath(driveID, parentID, name) + "/createUploadSession", Body: map[string]any{"item": item}}, &s); err != nil {
		return DriveItem{}, err
	}
	buf := make([]byte, DriveChunk)
	for off := int64(0); off < size; {
		n, err := r.ReadAt(buf[:min(int64(len(buf)), size-off)], off)
		if err != nil && err != io.EOF {
			return DriveItem{}, err
		}
		h := http.Header{"Content-Range": {fmt.Sprintf("bytes %d-%d/%d", off, off+int64(n)-1, size)}}
		var it DriveItem
		_, err = c.Do(ctx, Request{Method: http.MethodPut, Path: s.UploadURL, Body: buf[:n:n], Content: "application/octet-stream", Header: h, NoAuth: true}, &it)
		if IsStatus(err, http.StatusRequestedRangeNotSatisfiable) {
			// Ask the session what it has, and go on from there.
			if off, err = c.nextExpected(ctx, s); err != nil {
				return DriveItem{}, err
			}
			continue
		}
		if err != nil {
			return DriveItem{}, err
		}
		off += int64(n)
		if off >= size {
			return it, nil
		}
	}
	return DriveItem{}, fmt.Errorf("graph: upload of %s ended without the item", name)
}

// nextExpected reads where an upload session wants the next bytes.
func (c *Client) nextExpected(ctx context.Context, s UploadSession) (int64, error) {
	var st UploadSession
	if _, err := c.Do(ctx, Request{Method: http.MethodGet, Path: s.UploadURL, NoAuth: true}, &st); err != nil {
		return 0, err
	}
	if len(st.NextExpectedRanges) == 0 {
		return 0, fmt.Errorf("graph: the upload session expects nothing more")
	}
	from, _, _ := strings.Cut(st.NextExpectedRanges[0], "-")
	return strconv.ParseInt(from, 10, 64)
}

// Permission is a sharing permission on a drive item.
type Permission struct {
	ID          string   `json:"id"`
	Roles       []string `json:"roles"`
	GrantedToV2 *struct {
		User *struct {
			ID          string `json:"id,omitempty"`
			DisplayName string `json:"displayName,omitempty"`
		} `json:"user,omitempty"`
	} `json:"grantedToV2,omitempty"`
	// Invitation says whom a permission was granted to by email.
	Invitation *struct {
		Email string `json:"email,omitempty"`
	} `json:"invitation,omitempty"`
}

// Permissions lists an item's permissions.
func (c *Client) Permissions(ctx context.Context, driveID, itemID string) ([]Permission, error) {
	var out []Permission
	perms, _ := All[Permission](ctx, c, "/drives/"+url.PathEscape(driveID)+"/items/"+url.PathEscape(itemID)+"/permissions")
	for p, err := range perms {
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

// Invite grants people a role on an item without sending them anything: a migration re-creates
// sharing, it does not announce it.
func (c *Client) Invite(ctx context.Context, driveID, itemID string, emails, roles []string) ([]Permission, error) {
	var rec []map[string]string
	for _, e := range emails {
		rec = append(rec, map[string]string{"email": e})
	}
	var out struct {
		Value []Permission `json:"value"`
	}
	_, err := c.Do(ctx, Request{Method: http.MethodPost, Path: "/drives/" + url.PathEscape(driveID) + "/items/" + url.PathEscape(itemID) + "/invite",
		Body: map[string]any{"recipients": rec, "roles": roles, "requireSignIn": true, "sendInvitation": false}}, &out)
	return out.Value, err
}

// Site is a SharePoint site.
type Site struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	DisplayName string `json:"displayName"`
	WebURL      string `json:"webUrl"`
}

// SearchSites finds the sites whose name or title holds the term ("*" for every site).
func (c *Client) SearchSites(ctx context.Context, term string) ([]Site, error) {
	var out []Site
	sites, _ := All[Site](ctx, c, "/sites"+Query("search", term))
	for s, err := range sites {
		if err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// SiteDrives lists a site's document libraries.
func (c *Client) SiteDrives(ctx context.Context, siteID string) ([]Drive, error) {
	var out []Drive
	drives, _ := All[Drive](ctx, c, "/sites/"+url.PathEscape(siteID)+"/drives")
	for d, err := range drives {
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}
