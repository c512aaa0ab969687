//go:build windows

package main

import (
	"fmt"
	"html"
	"strings"

	"github.com/ferry-migrate/ferry/internal/agent"
)

// promptPage is the prompt as an HTML application: the company's logo, name and text, and one
// button that lets the switch-over go on.
func promptPage(p agent.Prompt) string {
	title := p.CompanyName
	if title == "" {
		title = "Your workstation is moving to the new tenant"
	}
	logo := ""
	if strings.HasPrefix(p.LogoURL, "https://") || strings.HasPrefix(p.LogoURL, "data:image/") {
		logo = fmt.Sprintf(`<img src="%s" alt="" style="max-height:64px;margin-bottom:12px">`, html.EscapeString(p.LogoURL))
	}
	text := strings.ReplaceAll(html.EscapeString(p.Text), "\n", "<br>")
	return `<html><head><title>` + html.EscapeString(title) + `</title>
<hta:application applicationname="FerryAgent" border="dialog" maximizebutton="no" minimizebutton="no" showintaskbar="yes" singleinstance="yes" scroll="no">
<meta http-equiv="x-ua-compatible" content="ie=edge">
<script>window.resizeTo(520, 360);</script></head>
<body style="font-family:Segoe UI,sans-serif;font-size:11pt;margin:24px">` + logo + `
<h2 style="font-weight:600;margin:0 0 12px">` + html.EscapeString(title) + `</h2>
<p>` + text + `</p>
<p style="color:#555">Outlook, OneDrive, Teams and Office will close for a few minutes and then sign in to your new account.</p>
<button onclick="window.close()" style="padding:6px 24px">Continue</button>
</body></html>`
}
