//go:build windows

package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/windows"

	"github.com/ferry-migrate/ferry/internal/agent"
	"github.com/ferry-migrate/ferry/internal/agent/winreg"
	"github.com/ferry-migrate/ferry/internal/agent/workstation"
	"github.com/ferry-migrate/ferry/internal/model"
)

// session is the user whose workstation the agent switches over: the agent's own user in user
// mode, or, for the service, whoever is signed in at the console. It holds no handle: the
// service asks for the user's token each time it needs one.
type session struct {
	id      uint32
	service bool
	sid     string // "" in user mode: HKCU is the agent's own
	name    string
	profile string
}

func currentSession(service bool) (*session, error) {
	if !service {
		var id uint32
		if err := windows.ProcessIdToSessionId(windows.GetCurrentProcessId(), &id); err != nil {
			return nil, err
		}
		home, _ := os.UserHomeDir()
		return &session{id: id, name: os.Getenv("USERNAME"), profile: home}, nil
	}
	s := &session{id: windows.WTSGetActiveConsoleSessionId(), service: true}
	tok, err := s.token()
	if err != nil {
		return nil, err
	}
	defer tok.Close()
	u, err := tok.GetTokenUser()
	if err != nil {
		return nil, err
	}
	if s.profile, err = tok.GetUserProfileDirectory(); err != nil {
		return nil, err
	}
	name, domain, _, _ := u.User.Sid.LookupAccount("")
	if domain != "" {
		name = domain + `\` + name
	}
	s.sid, s.name = u.User.Sid.String(), name
	return s, nil
}

// token is the signed-in user's token, which the caller closes.
func (s *session) token() (windows.Token, error) {
	var tok windows.Token
	if s.id == 0xFFFFFFFF || windows.WTSQueryUserToken(s.id, &tok) != nil {
		return 0, errors.New("no user is signed in at the console")
	}
	return tok, nil
}

// host is the workstation of a session, as the tasks see it.
func (s *session) host() *workstation.Host {
	appData, local := os.Getenv("APPDATA"), os.Getenv("LOCALAPPDATA")
	if s.service || appData == "" {
		appData, local = filepath.Join(s.profile, "AppData", "Roaming"), filepath.Join(s.profile, "AppData", "Local")
	}
	programFiles := os.Getenv("ProgramFiles")
	if programFiles == "" {
		programFiles = `C:\Program Files`
	}
	return &workstation.Host{
		Reg: winreg.Windows{UserSID: s.sid}, AppData: appData, LocalAppData: local, ProgramFiles: programFiles,
		Procs: procs{s}, Run: runHidden, Notify: s.notify,
	}
}

// platform wires the Windows tasks into the agent, and reports what is installed.
func platform(a *agent.Agent, service bool, email string) {
	a.Workstation = func() (map[string]agent.Task, error) {
		s, err := currentSession(service)
		if err != nil {
			return nil, err
		}
		return workstation.Tasks(s.host()), nil
	}
	a.Facts = func() model.DeviceFacts {
		f := baseFacts()
		f.OSVersion = windowsVersion()
		s, err := currentSession(service)
		if err != nil {
			return f // nobody signed in: no user, so nothing is released
		}
		h := s.host()
		f.UserName, f.Software, f.UserEmail = s.name, workstation.Software(h), email
		if f.UserEmail == "" && !service {
			f.UserEmail = upn()
		}
		if f.UserEmail == "" {
			f.UserEmail = workstation.UserEmail(h)
		}
		return f
	}
	a.AskUser = func(ctx context.Context, p agent.Prompt) error { return ask(ctx, a.Dir, p, service) }
	a.Announce = func(text string) {
		if s, err := currentSession(service); err == nil {
			s.notify("Your workstation is moving to the new tenant", text)
		}
	}
}

func windowsVersion() string {
	maj, min, build := windows.RtlGetNtVersionNumbers()
	return fmt.Sprintf("Windows %d.%d.%d", maj, min, build)
}

// upn asks Windows for the signed-in user's principal name (domain- or Entra-joined devices).
func upn() string {
	out, err := exec.Command("whoami", "/upn").Output()
	if err != nil {
		return ""
	}
	return strings.TrimSpace(string(out))
}

// runHidden runs a system command without a console window and returns what it printed.
func runHidden(ctx context.Context, name string, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{HideWindow: true, CreationFlags: windows.CREATE_NO_WINDOW}
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// procs finds and ends the programs of the session's user only: on a shared machine, other
// users' Outlook stays open.
type procs struct{ s *session }

func (p procs) each(image string, fn func(pid uint32) error) error {
	snap, err := windows.CreateToolhelp32Snapshot(windows.TH32CS_SNAPPROCESS, 0)
	if err != nil {
		return err
	}
	defer windows.CloseHandle(snap)
	var e windows.ProcessEntry32
	e.Size = uint32(unsafe.Sizeof(e))
	for err = windows.Process32First(snap, &e); err == nil; err = windows.Process32Next(snap, &e) {
		if !strings.EqualFold(windows.UTF16ToString(e.ExeFile[:]), image) {
			continue
		}
		var sess uint32
		if windows.ProcessIdToSessionId(e.ProcessID, &sess) == nil && sess != p.s.id {
			continue
		}
		if err := fn(e.ProcessID); err != nil {
			return err
		}
	}
	if errors.Is(err, windows.ERROR_NO_MORE_FILES) {
		return nil
	}
	return err
}

func (p procs) Running(image string) (bool, error) {
	found := false
	err := p.each(image, func(uint32) error { found = true; return nil })
	return found, err
}

func (p procs) Kill(image string) error {
	return p.each(image, func(pid uint32) error {
		h, err := windows.OpenProcess(windows.PROCESS_TERMINATE|windows.SYNCHRONIZE, false, pid)
		if err != nil {
			return err
		}
		defer windows.CloseHandle(h)
		if err := windows.TerminateProcess(h, 1); err != nil {
			return err
		}
		windows.WaitForSingleObject(h, 10_000)
		return nil
	})
}

func (p procs) StartAsUser(path string, args ...string) error {
	h, err := p.s.start(path, args...)
	if err == nil {
		windows.CloseHandle(h)
	}
	return err
}

// start runs a program as the session's user, on the user's desktop; in user mode as the agent.
func (s *session) start(path string, args ...string) (windows.Handle, error) {
	if !s.service {
		cmd := exec.Command(path, args...)
		if err := cmd.Start(); err != nil {
			return 0, err
		}
		h, err := windows.OpenProcess(windows.SYNCHRONIZE|windows.PROCESS_QUERY_LIMITED_INFORMATION, false, uint32(cmd.Process.Pid))
		cmd.Process.Release()
		return h, err
	}
	line := syscall.EscapeArg(path)
	for _, a := range args {
		line += " " + syscall.EscapeArg(a)
	}
	tok, err := s.token()
	if err != nil {
		return 0, err
	}
	defer tok.Close()
	var env *uint16
	if err := windows.CreateEnvironmentBlock(&env, tok, false); err != nil {
		return 0, err
	}
	defer windows.DestroyEnvironmentBlock(env)
	si := windows.StartupInfo{Desktop: windows.StringToUTF16Ptr(`winsta0\default`)}
	si.Cb = uint32(unsafe.Sizeof(si))
	var pi windows.ProcessInformation
	err = windows.CreateProcessAsUser(tok, nil, windows.StringToUTF16Ptr(line), nil, nil, false,
		windows.CREATE_UNICODE_ENVIRONMENT, env, windows.StringToUTF16Ptr(s.profile), &si, &pi)
	if err != nil {
		return 0, fmt.Errorf("starting %s as the signed-in user: %w", path, err)
	}
	windows.CloseHandle(pi.Thread)
	return pi.Process, nil
}

var (
	wtsapi32        = windows.NewLazySystemDLL("wtsapi32.dll")
	wtsSendMessageW = wtsapi32.NewProc("WTSSendMessageW")
)

// notify shows a message without waiting: in the user's session through the terminal services
// API when the agent is a service, or in a message box of its own otherwise.
func (s *session) notify(title, text string) {
	t, m := windows.StringToUTF16(title), windows.StringToUTF16(text)
	if s.service {
		var resp uint32
		wtsSendMessageW.Call(0, uintptr(s.id), uintptr(unsafe.Pointer(&t[0])), uintptr(2*len(t)), uintptr(unsafe.Pointer(&m[0])), uintptr(2*len(m)),
			uintptr(windows.MB_OK|windows.MB_ICONINFORMATION|windows.MB_SETFOREGROUND), 0, uintptr(unsafe.Pointer(&resp)), 0)
		return
	}
	go windows.MessageBox(0, &m[0], &t[0], windows.MB_OK|windows.MB_ICONINFORMATION|windows.MB_SETFOREGROUND|windows.MB_TOPMOST)
}

// ask shows the project's prompt and waits until the user closes it, for at most 30 minutes:
// an unattended workstation is switched over all the same. The prompt is a small HTML
// application (mshta), which can show the company's logo; where mshta cannot start, a message
// box shows the text.
func ask(ctx context.Context, dir string, p agent.Prompt, service bool) error {
	s, err := currentSession(service)
	if err != nil {
		return err
	}
	page := filepath.Join(dir, "prompt.hta")
	if err := os.WriteFile(page, []byte(promptPage(p)), 0o644); err != nil {
		return err
	}
	mshta := filepath.Join(os.Getenv("SystemRoot"), "System32", "mshta.exe")
	h, err := s.start(mshta, page)
	if err != nil {
		title := p.CompanyName
		if title == "" {
			title = "Your workstation is moving"
		}
		s.notify(title, p.Text)
		return nil
	}
	defer windows.CloseHandle(h)
	deadline := time.Now().Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		if ev, _ := windows.WaitForSingleObject(h, 1000); ev == windows.WAIT_OBJECT_0 {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
	}
	return nil
}
