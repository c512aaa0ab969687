package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// After sign-in the console only ever redirects to a path on this server.
func TestSignInRedirectStaysOnThisServer(t *testing.T) {
	e := newEnv(t)
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	for next, want := range map[string]string{
		"/\t/evil.example":         "/",
		"/\n/evil.example":         "/",
		"/\r\n/evil.example":       "/",
		"//evil.example":           "/",
		"/\\evil.example":          "/",
		"https://evil.example/":    "/",
		"javascript:alert(1)":      "/",
		"/projects/acme?tab=items": "/projects/acme?tab=items",
		"/items/itm_1#log":         "/items/itm_1#log",
		"/%2F%2Fevil.example":      "/%2F%2Fevil.example",
		"/ok\x00/evil.example":     "/",
		"/\u3000/evil.example":     "/",
		"/./\\evil.example":        "/",
	} {
		form := url.Values{"username": {"admin"}, "password": {adminPassword}, "next": {next}}
		resp, err := noFollow.PostForm(e.srv.URL+"/login", form)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusSeeOther || resp.Header.Get("Location") != want {
			t.Errorf("next %q: %d Location %q, want 303 to %q", next, resp.StatusCode, resp.Header.Get("Location"), want)
		}
	}
}

func TestConsoleSendsReferrerPolicy(t *testing.T) {
	e := newEnv(t)
	resp, err := http.Get(e.srv.URL + "/login?next=%2Fprojects%2Fsecret-name")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Referrer-Policy"); got != "same-origin" {
		t.Errorf("sign-in page Referrer-Policy = %q, want same-origin", got)
	}
	if got := resp.Header.Get("X-Content-Type-Options"); got != "nosniff" {
		t.Errorf("sign-in page X-Content-Type-Options = %q, want nosniff", got)
	}
}

// The console's sign-in form is as small as the API's.
func TestConsoleSignInBodyIsSmall(t *testing.T) {
	e := newEnv(t)
	form := url.Values{"username": {"admin"}, "password": {strings.Repeat("x", 64<<10)}}
	resp, err := http.PostForm(e.srv.URL+"/login", form)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("64 KiB sign-in form: %d, want 413", resp.StatusCode)
	}
}
