package workstation

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
)

// outlook gives Outlook a new default profile for the target mailbox, which Outlook sets up by
// itself through ZeroConfigExchange and autodiscover at its next start. The old profile is kept
// under a new name; the default signatures carry over, and the old profile's PST files can be
// attached to the new one through an Outlook profile file (PRF) Outlook imports at that start.
type outlook struct{ base }

// outlookVersions are the Office versions whose Outlook keeps profiles under Office\<v>\Outlook:
// 16.0 (2016, 2019, 2021, 2024 and Microsoft 365) and 15.0 (2013).
var outlookVersions = []string{"16.0", "15.0"}

// keptSuffix names the old profile once the new one is the default.
const keptSuffix = " (before migration)"

func (o outlook) Run(ctx context.Context, job agent.Job) (string, error) {
	h, name := o.h, job.Target.OutlookProfile
	if name == "" {
		return "", errors.New("the server named no Outlook profile")
	}
	var found []string
	for _, v := range outlookVersions {
		if ok, err := winreg.Exists(h.Reg, outlookKey(v)+`\Profiles`); err != nil {
			return "", err
		} else if ok {
			found = append(found, v)
		}
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%w: no Outlook 2013 or 2016+ profile", agent.ErrSkip)
	}
	detail, err := h.closeApps(ctx, job.Target, "Outlook", "OUTLOOK.EXE")
	if err != nil {
		return "", err
	}
	j, err := h.journal(job.Backup)
	if err != nil {
		return "", err
	}
	for _, v := range found {
		d, err := o.switchProfile(j, v, name, job)
		if err != nil {
			return "", fmt.Errorf("outlook %s: %w", v, err)
		}
		detail += d
	}
	d, err := o.copySignatures(j, job.Target.SourceEmail, job.Target.TargetEmail)
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(detail+d, "; "), nil
}

func outlookKey(v string) string { return `HKCU\Software\Microsoft\Office\` + v + `\Outlook` }

func (o outlook) switchProfile(j *journal, v, name string, job agent.Job) (string, error) {
	r, base := o.h.Reg, outlookKey(v)
	profiles := base + `\Profiles`
	def, _, err := winreg.Get(r, base, "DefaultProfile")
	if err != nil {
		return "", err
	}
	old := def.Text()
	detail := fmt.Sprintf("Outlook %s: profile %q is the default", v, name)
	var psts []string
	var sigs map[string]string
	if old != "" && !strings.EqualFold(old, name) {
		if ok, err := winreg.Exists(r, profiles+`\`+old); err != nil {
			return "", err
		} else if ok {
			if psts, sigs, err = profileFacts(r, profiles+`\`+old); err != nil {
				return "", err
			}
			kept := old + keptSuffix
			if err := j.copyKey(profiles+`\`+old, profiles+`\`+kept); err != nil {
				return "", err
			}
			if err := j.deleteKey(profiles + `\` + old); err != nil {
				return "", err
			}
			detail += fmt.Sprintf(", the old %q kept as %q", old, kept)
		}
	}
	if ok, err := winreg.Exists(r, profiles+`\`+name); err != nil {
		return "", err
	} else if !ok {
		if err := j.saveKey(profiles + `\` + name); err != nil {
			return "", err
		}
		if err := r.CreateKey(profiles + `\` + name); err != nil {
			return "", err
		}
	}
	if _, err := j.setValue(base, "DefaultProfile", winreg.Str(name)); err != nil {
		return "", err
	}
	// The policy key: Outlook then builds the new, empty profile from autodiscover without asking.
	if _, err := j.setValue(`HKCU\Software\Policies\Microsoft\Office\`+v+`\Outlook\AutoDiscover`, "ZeroConfigExchange", winreg.Num(1)); err != nil {
		return "", err
	}
	mail := `HKCU\Software\Microsoft\Office\` + v + `\Common\MailSettings`
	for _, n := range []string{"NewSignature", "ReplySignature"} {
		if s := sigs[n]; s != "" {
			if _, err := j.setValue(mail, n, winreg.Str(s)); err != nil {
				return "", err
			}
			detail += fmt.Sprintf(", %s %q", n, s)
		}
	}
	if job.Target.ReattachPST && len(psts) > 0 {
		if err := o.reattach(j, v, name, psts); err != nil {
			return "", err
		}
		detail += fmt.Sprintf(", %d PST files re-attached at Outlook's next start", len(psts))
	}
	return detail + "; ", nil
}

// profileFacts reads a MAPI profile: the PST files it opens (PR_PST_PATH_W, 001f6700) and the
// default signatures of its accounts ("New Signature", "Reply-Forward Signature").
func profileFacts(r winreg.Registry, key string) (psts []string, sigs map[string]string, err error) {
	sigs = map[string]string{}
	err = winreg.Walk(r, key, func(_ string, vals map[string]winreg.Value) error {
		for n, v := range vals {
			switch strings.ToLower(n) {
			case "001f6700":
				if p := v.Text(); strings.HasSuffix(strings.ToLower(p), ".pst") {
					psts = append(psts, p)
				}
			case "new signature":
				sigs["NewSignature"] = v.Text()
			case "reply-forward signature":
				sigs["ReplySignature"] = v.Text()
			}
		}
		return nil
	})
	return psts, sigs, err
}

// reattach writes a PRF that appends the PST files to the new profile, and points Outlook's
// ImportPRF at it; removing First-Run makes Outlook read it at its next start.
func (o outlook) reattach(j *journal, v, profile string, psts []string) error {
	var b strings.Builder
	fmt.Fprintf(&b, "[General]\r\nCustom=1\r\nProfileName=%s\r\nDefaultProfile=Yes\r\nOverwriteProfile=Append\r\nModifyDefaultProfileIfPresent=false\r\nBackupProfile=No\r\n\r\n[Service List]\r\n", profile)
	for i := range psts {
		fmt.Fprintf(&b, "Service%d=Unicode Personal Folders\r\n", i+1)
	}
	for i, p := range psts {
		fmt.Fprintf(&b, "\r\n[Service%d]\r\nUniqueService=No\r\nName=%s\r\nPathToPersonalFolders=%s\r\nEncryptionType=0x80000000\r\n",
			i+1, strings.TrimSuffix(filepath.Base(strings.ReplaceAll(p, `\`, "/")), filepath.Ext(p)), p)
	}
	path := filepath.Join(j.dir, "reattach-"+v+".prf")
	if err := j.created(path); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return err
	}
	setup := outlookKey(v) + `\Setup`
	if _, err := j.setValue(setup, "ImportPRF", winreg.Str(path)); err != nil {
		return err
	}
	for _, n := range []string{"First-Run", "FirstRun"} {
		if err := j.deleteValue(setup, n); err != nil {
			return err
		}
	}
	return nil
}

// copySignatures gives the signature files Outlook named after the source account ("Name
// (user@source).htm", with their _files folders) a copy named after the target account.
func (o outlook) copySignatures(j *journal, from, to string) (string, error) {
	if from == "" || to == "" || strings.EqualFold(from, to) {
		return "", nil
	}
	dir := filepath.Join(o.h.AppData, "Microsoft", "Signatures")
	entries, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	n := 0
	for _, e := range entries {
		i := strings.Index(strings.ToLower(e.Name()), "("+strings.ToLower(from)+")")
		if i < 0 {
			continue
		}
		dst := filepath.Join(dir, e.Name()[:i]+"("+to+")"+e.Name()[i+len(from)+2:])
		if _, err := os.Lstat(dst); err == nil {
			continue
		}
		if err := j.created(dst); err != nil {
			return "", err
		}
		if err := copyTree(filepath.Join(dir, e.Name()), dst); err != nil {
			return "", err
		}
		n++
	}
	if n == 0 {
		return "", nil
	}
	return fmt.Sprintf("%d signature files copied for %s; ", n, to), nil
}

// copyTree copies a file, or a folder with everything in it.
func copyTree(src, dst string) error {
	return filepath.WalkDir(src, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, p)
		out := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(out, 0o755)
		}
		in, err := os.Open(p)
		if err != nil {
			return err
		}
		defer in.Close()
		w, err := os.OpenFile(out, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
		if err != nil {
			return err
		}
		if _, err := io.Copy(w, in); err != nil {
			w.Close()
			return err
		}
		return w.Close()
	})
}
