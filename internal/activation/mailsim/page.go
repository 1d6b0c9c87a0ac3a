package mailsim

import (
	"html/template"
	"net/http"
	"regexp"
	"strings"
	"time"
)

// Handler serves the mailbox page: the kept messages, newest first, their
// web links clickable (the demo's confirmation links are opened from here).
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		msgs := s.Messages()
		d := pageData{Count: len(msgs)}
		for i := len(msgs) - 1; i >= 0; i-- {
			d.Messages = append(d.Messages, viewOf(msgs[i]))
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = pageTmpl.Execute(w, d)
	})
}

type pageData struct {
	Count    int
	Messages []pageMessage
}

type pageMessage struct {
	At, From, To, Subject string
	Body                  []bodyPart
	Error                 string
}

// bodyPart is a run of the body's text, a web link when Link is set.
type bodyPart struct {
	Text string
	Link bool
}

func viewOf(m Message) pageMessage {
	v := pageMessage{At: m.At.UTC().Format(time.DateTime), From: m.From, To: strings.Join(m.To, ", ")}
	d, err := m.Decode()
	if err != nil {
		v.Error = err.Error()
		return v
	}
	v.Subject, v.Body = d.Subject, splitLinks(d.Body)
	return v
}

// webLink finds http and https addresses in a text body; only those become
// links, so a message cannot put a javascript: link on the page.
var webLink = regexp.MustCompile(`https?://[^\s<>"]+`)

func splitLinks(body string) []bodyPart {
	var out []bodyPart
	last := 0
	for _, loc := range webLink.FindAllStringIndex(body, -1) {
		if loc[0] > last {
			out = append(out, bodyPart{Text: body[last:loc[0]]})
		}
		out = append(out, bodyPart{Text: body[loc[0]:loc[1]], Link: true})
		last = loc[1]
	}
	if last < len(body) {
		out = append(out, bodyPart{Text: body[last:]})
	}
	return out
}

var pageTmpl = template.Must(template.New("mailbox").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Mailbox</title>
<style>body{font:14px sans-serif;margin:2em;max-width:60em}article{border:1px solid #ccc;padding:.5em 1em;margin:1em 0}
.muted{color:#666}pre{white-space:pre-wrap;font:inherit}</style></head><body>
<h1>Mailbox</h1>
<p class="muted">Every e-mail the app sent, newest first ({{.Count}} kept). Reload to see new ones.</p>
{{range .Messages}}<article>
<h2>{{if .Subject}}{{.Subject}}{{else}}(no subject){{end}}</h2>
<p class="muted">{{.At}} UTC · from {{.From}} · to {{.To}}</p>
{{if .Error}}<p>Unreadable: {{.Error}}</p>{{else}}<pre>{{range .Body}}{{if .Link}}<a href="{{.Text}}" target="_blank" rel="noopener">{{.Text}}</a>{{else}}{{.Text}}{{end}}{{end}}</pre>{{end}}
</article>{{else}}<p>No e-mail yet.</p>{{end}}
</body></html>`))
