package web_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"
	goimap "github.com/emersion/go-imap/v2"

	_ "github.com/ferry-migrate/ferry/internal/connector/imap"
	"github.com/ferry-migrate/ferry/internal/testenv/chromium"
	"github.com/ferry-migrate/ferry/internal/testenv/dovecot"
)

// TestConsoleInChromium drives the console in a real headless Chromium: sign in, create two IMAP
// endpoints on real Dovecot servers and a project, see a bad CSV rejected with its line numbers,
// import a good one, start a full pass and watch every item reach Completed without a reload,
// then sign in as a Reader who sees no start button and whose forged posts are refused.
func TestConsoleInChromium(t *testing.T) {
	e := newEnv(t)
	users := []string{"alice", "bob", "carol"}
	src := dovecot.Start(t, dovecot.Options{Users: users})
	dst := dovecot.Start(t, dovecot.Options{Users: users})
	for i, u := range users {
		c := src.Dial(t, u)
		for m := 0; m < 4+i; m++ {
			body := fmt.Sprintf("Message-ID: <%d.%s@console.test>\r\nSubject: note %d\r\n\r\nhello %s\r\n", m, u, m, u)
			cmd := c.Append("INBOX", int64(len(body)), &goimap.AppendOptions{Flags: []goimap.Flag{goimap.FlagSeen}, Time: time.Now()})
			cmd.Write([]byte(body))
			cmd.Close()
			if _, err := cmd.Wait(); err != nil {
				t.Fatal(err)
			}
		}
		c.Close()
	}
	e.user(t, "rita", "Reader")

	browser := chromium.Start(t, 1280, 900)
	ctx, cancel := context.WithTimeout(browser, 3*time.Minute)
	defer cancel()
	shots := chromium.Artifacts(t, "console")
	do := func(what string, steps ...chromedp.Action[chromedp.Void]) {
		t.Helper()
		if err := chromedp.Do(ctx, steps...); err != nil {
			shot(t, ctx, shots, "failed")
			t.Fatalf("%s: %v", what, err)
		}
	}
	text := func(sel string) string {
		t.Helper()
		s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		if err != nil {
			t.Fatalf("text of %s: %v", sel, err)
		}
		return strings.TrimSpace(s)
	}
	eval := func(js string) any {
		t.Helper()
		v, err := chromedp.Run(ctx, chromedp.Evaluate[any](js, chromedp.EvalAwaitPromise))
		if err != nil {
			t.Fatalf("evaluate %s: %v", js, err)
		}
		return v
	}
	// waitFor polls a JavaScript expression until it is truthy. A form post replaces the page
	// under the poll, which ends it with an error; the poll then starts again on the new page.
	waitFor := func(js string, timeout time.Duration) (string, error) {
		deadline := time.Now().Add(timeout)
		for {
			s, err := chromedp.Run(ctx, chromedp.Poll[string](js, chromedp.WithPollingTimeout(time.Until(deadline)), chromedp.WithPollingInterval(100*time.Millisecond)))
			if err == nil || time.Now().After(deadline) || ctx.Err() != nil {
				return s, err
			}
		}
	}
	// flashAfter waits for the page a form post lands on, by the flash message it shows.
	flashAfter := func(want string) string {
		t.Helper()
		js := fmt.Sprintf(`(() => { const f = document.querySelector(".flash"); return f && f.textContent.includes(%q) ? f.textContent.trim() : ""; })()`, want)
		s, err := waitFor(js, 30*time.Second)
		if err != nil {
			shot(t, ctx, shots, "failed")
			got, _ := chromedp.Run(ctx, chromedp.Evaluate[string](`document.querySelector("main").innerText`))
			t.Fatalf("waiting for the message %q: %v; the page says:\n%s", want, err, got)
		}
		return s
	}

	// Sign in, by keyboard.
	do("sign in",
		chromedp.Navigate(e.srv.URL+"/"),
		chromedp.WaitVisible(chromedp.ID("username")),
		chromedp.SendKeys(chromedp.ID("username"), "admin"),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#projects-h")),
	)
	if h := text("h1"); h != "Dashboard" {
		t.Fatalf("after sign-in the page is %q", h)
	}
	do("skip link", chromedp.KeyEvent(kb.Tab))
	if got := eval(`document.activeElement.textContent`); got != "Skip to content" {
		t.Errorf("the first Tab reaches %q, want the skip link", got)
	}
	shot(t, ctx, shots, "01-dashboard")

	// Two endpoints on the two Dovecot servers.
	for _, ep := range []struct {
		name string
		srv  *dovecot.Server
	}{{"old", src}, {"new", dst}} {
		host, port, _ := strings.Cut(ep.srv.Addr, ":")
		do("add endpoint "+ep.name,
			chromedp.Navigate(e.srv.URL+"/endpoints"),
			chromedp.WaitVisible(chromedp.ID("ep-name")),
			chromedp.SendKeys(chromedp.ID("ep-name"), ep.name),
			chromedp.SetValue(chromedp.ID("ep-kind"), "imap"),
			chromedp.SendKeys(chromedp.ID("ep-host"), host),
			chromedp.SendKeys(chromedp.ID("ep-port"), port),
			chromedp.SetValue(chromedp.ID("ep-sec"), "none"),
			chromedp.SendKeys(chromedp.ID("ep-user"), "alice"),
			chromedp.SendKeys(chromedp.ID("ep-pw"), dovecot.Password("alice")),
			chromedp.Click(chromedp.ID("add-endpoint-submit")),
		)
		if msg := flashAfter("Endpoint " + ep.name + " added"); !strings.Contains(msg, "Verify it") {
			t.Errorf("add endpoint: %q", msg)
		}
	}
	do("verify endpoint", chromedp.Click(chromedp.ID("verify-old")))
	if msg := flashAfter("Verify old"); msg != "Verify old: credentials accepted" {
		t.Errorf("verify shows %q", msg)
	}
	if rows := eval(`document.querySelectorAll("#endpoints tbody tr").length`); rows != 2.0 {
		t.Errorf("endpoints table has %v rows, want 2", rows)
	}
	shot(t, ctx, shots, "02-endpoints")

	// A project.
	do("create project",
		chromedp.Navigate(e.srv.URL+"/projects/new"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), "mail"),
		chromedp.SetValue(chromedp.ID("source"), "old"),
		chromedp.SetValue(chromedp.ID("target"), "new"),
		chromedp.Click(chromedp.ID("create-project")),
	)
	flashAfter("Project mail created")
	if h := text("h1"); h != "mail" {
		t.Fatalf("project page heading %q", h)
	}

	// A bad CSV is rejected whole, with its line numbers.
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.csv")
	os.WriteFile(bad, []byte("source_email,target_email\nalice@old.example,alice@new.example\nnot-an-address,x@new.example\nbob@old.example,\n"), 0o600)
	do("import a bad CSV",
		chromedp.SetUploadFiles(chromedp.ID("csv"), []string{bad}),
		chromedp.Click(chromedp.ID("import")),
		chromedp.WaitVisible(chromedp.ID("import-errors")),
	)
	report := text("#import-errors")
	for _, want := range []string{"bad.csv: CSV rejected, nothing imported: 2 bad lines", "3", "4"} {
		if !strings.Contains(report, want) {
			t.Errorf("the import report lacks %q:\n%s", want, report)
		}
	}
	if lines := eval(`[...document.querySelectorAll("#import-errors tbody td.num")].map(td => td.textContent).join(",")`); lines != "3,4" {
		t.Errorf("bad lines shown: %v, want 3,4", lines)
	}
	shot(t, ctx, shots, "03-csv-rejected")

	good := filepath.Join(dir, "users.csv")
	var csv strings.Builder
	csv.WriteString("source_email,target_email,source_login,source_password,target_login,target_password\n")
	for _, u := range users {
		fmt.Fprintf(&csv, "%s@old.example,%s@new.example,%s,%s,%s,%s\n", u, u, u, dovecot.Password(u), u, dovecot.Password(u))
	}
	os.WriteFile(good, []byte(csv.String()), 0o600)
	do("import users.csv", chromedp.SetUploadFiles(chromedp.ID("csv"), []string{good}), chromedp.Click(chromedp.ID("import")))
	if msg := flashAfter("Imported users.csv"); msg != "Imported users.csv: 3 lines, 3 new, 0 updated." {
		t.Errorf("import: %q", msg)
	}

	// A full pass, watched live: the marker set on the page would vanish with a reload.
	do("start a full pass", chromedp.Click(chromedp.ID("pass-full")))
	flashAfter("Full pass started for 3 items")
	eval(`window.ferryNoReload = true`)
	_, err := waitFor(`(() => {
		const cells = [...document.querySelectorAll("#items td[data-field=status]")].map(td => td.textContent.trim());
		return cells.length === 3 && cells.every(s => s === "Completed") ? "yes" : "";
	})()`, 90*time.Second)
	if err != nil {
		shot(t, ctx, shots, "failed")
		t.Fatalf("items did not reach Completed on the page: %v; statuses %v", err, eval(`[...document.querySelectorAll("#items td[data-field=status]")].map(td => td.textContent.trim()).join(",")`))
	}
	if eval(`window.ferryNoReload === true`) != true {
		t.Error("the page reloaded: the statuses must arrive over server-sent events")
	}
	if got := text(`[data-count="Completed"]`); got != "3" {
		t.Errorf("Completed count on the page: %q, want 3", got)
	}
	if got := eval(`[...document.querySelectorAll("#items td[data-field=objects]")].map(td => td.textContent).join(",")`); got != "4,5,6" {
		t.Errorf("objects per item on the page: %v, want 4,5,6", got)
	}
	shot(t, ctx, shots, "04-project-completed")

	// The item page: pass history and reconciliation.
	do("open an item", chromedp.Click(chromedp.CSS(`#items a[href^="/items/"]`)), chromedp.WaitVisible(chromedp.ID("folders")))
	if got := eval(`[...document.querySelectorAll("#folders tbody tr")].map(tr => tr.innerText.replace(/\t/g, "|")).join("\n")`); !strings.Contains(got.(string), "INBOX|INBOX|4|") || !strings.Contains(got.(string), "match") {
		t.Errorf("alice's folder table:\n%v", got)
	}
	if got := text("#runs tbody tr td:nth-child(2)"); got != "Completed" {
		t.Errorf("latest run status %q", got)
	}
	shot(t, ctx, shots, "05-item")

	// Tablet width: nothing overflows the page sideways.
	for _, path := range []string{"/", "/projects/mail", "/endpoints", "/settings"} {
		do("tablet "+path, chromedp.EmulateViewport(820, 1180), chromedp.Navigate(e.srv.URL+path), chromedp.WaitVisible(chromedp.CSS("h1")))
		if over := eval(`document.documentElement.scrollWidth - document.documentElement.clientWidth`); over != 0.0 {
			t.Errorf("%s at 820 px overflows by %v px", path, over)
		}
	}
	shot(t, ctx, shots, "06-settings-tablet")
	do("dashboard after the pass", chromedp.EmulateViewport(1280, 900), chromedp.Navigate(e.srv.URL+"/"), chromedp.WaitVisible(chromedp.ID("throughput")))
	if bars := eval(`[...document.querySelectorAll("#throughput rect.bar")].filter(r => +r.getAttribute("height") > 0).length`); bars != 1.0 {
		t.Errorf("the throughput chart has %v non-empty bars, want 1 (the hour of the pass)", bars)
	}
	if got := eval(`document.querySelector("#projects tbody tr").innerText.replace(/\s+/g, " ").trim()`); got != "mail mailbox old → new 3 Completed 3" {
		t.Errorf("dashboard project row: %q", got)
	}
	shot(t, ctx, shots, "07-dashboard-after-pass")

	// A Reader sees the project without the buttons, and a forged post is refused.
	do("sign out", chromedp.Navigate(e.srv.URL+"/"), chromedp.Click(chromedp.CSS("form.signout button")), chromedp.WaitVisible(chromedp.ID("username")))
	do("sign in as a Reader",
		chromedp.SendKeys(chromedp.ID("username"), "rita"),
		chromedp.SendKeys(chromedp.ID("password"), adminPassword+"rita"+kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("#projects-h")),
		chromedp.Click(chromedp.CSS(`#projects a[href^="/projects/"]`)),
		chromedp.WaitVisible(chromedp.ID("items")),
	)
	if n := eval(`document.querySelectorAll("#pass-full, #pass-verify, #stop, #import").length`); n != 0.0 {
		t.Errorf("a Reader sees %v start, stop or import controls", n)
	}
	shot(t, ctx, shots, "08-reader")
	forged := eval(`(async () => {
		const csrf = document.querySelector("input[name=csrf_token]").value;
		const id = location.pathname.split("/")[2];
		const form = await fetch("/projects/" + id + "/passes", {method: "POST", body: new URLSearchParams({csrf_token: csrf, type: "full"}), redirect: "manual"});
		const api = await fetch("/api/v1/projects/" + id + "/passes", {method: "POST", headers: {"X-CSRF-Token": csrf, "Content-Type": "application/json"}, body: JSON.stringify({type: "full"})});
		return form.status + "," + api.status + "," + (await api.json()).detail;
	})()`)
	if forged != "403,403,your role does not allow this: needs Operator on this project, you are Reader" {
		t.Errorf("a Reader's forged posts: %v, want 403 from the console and the API", forged)
	}
}

func shot(t testing.TB, ctx context.Context, dir, name string) {
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Errorf("save screenshot: %v", err)
	}
}
