package email

import (
	"bytes"
	"encoding/json"
	"fmt"
	htmltemplate "html/template"
	"text/template"
	"time"

	"github.com/zdm-io/zdm/domain"
)

// view is what the templates see.
type view struct {
	Kind       string
	M          *domain.Migration
	Lag        string
	Threshold  string
	Deadline   string
	Pause      string
	Checks     []string
	ConsoleURL string
}

const textTmpl = `{{define "lag_under_threshold"}}The sync lag of migration {{.M.ID}} ({{.M.Source.Name}} -> {{.M.Target.Name}}) is {{.Lag}}, under the threshold of {{.Threshold}}.

You can stop the sync now:
  1. stop writing to the source cluster {{.M.Source.Name}};
  2. confirm it: zdmd migration stop-sync {{.M.ID}} --confirm-writes-stopped
     (or POST /v1/migrations/{{.M.ID}}/stop-sync {"confirm_writes_stopped": true}).
zdm then drains what is left and switches to the target.
The sync stops by itself, and the migration fails, at {{.Deadline}} (sync time limit).{{end}}
{{define "failed"}}Migration {{.M.ID}} ({{.M.Source.Name}} -> {{.M.Target.Name}}) failed.

Reason: {{.M.FailureReason}}
{{if .M.FailureDetail}}Detail: {{.M.FailureDetail}}
{{end}}Stage: {{.M.FailedStage}}
The source cluster {{.M.Source.Name}} is unlocked and unchanged; a provisioned target is released.
See docs/operator-guide.md, "Failure reasons", for what to do.{{end}}
{{define "switched_over"}}Migration {{.M.ID}} is done: traffic goes to {{.M.Target.Name}} at {{.M.Switch.TargetEndpoint}}.

Write pause at the switch: {{.Pause}}.
Verification:
{{range .Checks}}  {{.}}
{{end}}The source cluster {{.M.Source.Name}} is kept (status Migrated); zdm never deletes it.
Clients connected through the zdm proxy need no change; others connect to {{.M.Switch.TargetEndpoint}}.{{end}}
{{define "time_limit_warning"}}The sync of migration {{.M.ID}} ({{.M.Source.Name}} -> {{.M.Target.Name}}) reaches its time limit at {{.Deadline}}.

If it is not stopped by then, zdm stops it, releases the target and the migration fails (reason sync_time_limit).
Current lag: {{.Lag}} (threshold {{.Threshold}}). To finish, stop writes to the source and run:
  zdmd migration stop-sync {{.M.ID}} --confirm-writes-stopped{{end}}`

const htmlTmpl = `<!doctype html><html><body style="font-family:sans-serif">
<h2>zdm: {{.Kind}}</h2><p>Migration <b>{{.M.ID}}</b>: {{.M.Source.Name}} &rarr; {{.M.Target.Name}}</p>
{{if eq .Kind "lag_under_threshold"}}<p>The sync lag is <b>{{.Lag}}</b>, under the threshold of {{.Threshold}}. Stop writing to the source, then confirm with <code>zdmd migration stop-sync {{.M.ID}} --confirm-writes-stopped</code>.</p>{{end}}
{{if eq .Kind "failed"}}<p>The migration <b>failed</b>: <code>{{.M.FailureReason}}</code></p><p>{{.M.FailureDetail}}</p>{{end}}
{{if eq .Kind "switched_over"}}<p>Traffic goes to <b>{{.M.Switch.TargetEndpoint}}</b>. Write pause: {{.Pause}}.</p><ul>{{range .Checks}}<li>{{.}}</li>{{end}}</ul>{{end}}
{{if eq .Kind "time_limit_warning"}}<p>The sync reaches its time limit at <b>{{.Deadline}}</b>; if not stopped by then, the migration fails.</p>{{end}}
{{if .ConsoleURL}}<p><a href="{{.ConsoleURL}}">Open the migration</a></p>{{end}}
</body></html>`

var subjects = map[string]string{
	domain.NotifyLagUnderThreshold: "zdm: migration %s can be stopped (lag under threshold)",
	domain.NotifyFailed:            "zdm: migration %s failed",
	domain.NotifySwitchedOver:      "zdm: migration %s switched over",
	domain.NotifyTimeLimitWarning:  "zdm: migration %s reaches its sync time limit within a day",
}

func render(n domain.Notification, consoleURL string) (subject, text, html string, err error) {
	format, ok := subjects[n.Kind]
	if !ok {
		return "", "", "", fmt.Errorf("no template for %q", n.Kind)
	}
	m := n.Migration
	v := view{Kind: n.Kind, M: m, Lag: fmt.Sprintf("%.1fs", m.Lag.Seconds), Threshold: fmt.Sprintf("%.0fs", m.Options.LagThresholdSeconds),
		Deadline: m.SyncDeadline().UTC().Format(time.RFC1123), Pause: fmt.Sprintf("%.0f ms", m.Switch.WritePauseMS)}
	if consoleURL != "" {
		v.ConsoleURL = consoleURL + "/#/migrations/" + m.ID
	}
	for _, ver := range m.Verifications {
		var rep struct {
			Collections []struct {
				Database   string `json:"database"`
				Collection string `json:"collection"`
				SourceRows int64  `json:"source_rows"`
				TargetRows int64  `json:"target_rows"`
				Equal      bool   `json:"equal"`
			} `json:"collections"`
		}
		_ = json.Unmarshal(ver.Report, &rep)
		if len(rep.Collections) == 0 {
			// Said even when there is no collection to list.
			verdict := "equal"
			if !ver.Equal {
				verdict = "DIFFERENT"
			}
			v.Checks = append(v.Checks, fmt.Sprintf("%s: %s", ver.Phase, verdict))
		}
		for _, c := range rep.Collections {
			verdict := "equal"
			if !c.Equal {
				verdict = "DIFFERENT"
			}
			v.Checks = append(v.Checks, fmt.Sprintf("%s %s/%s: %s (%d rows on the source, %d on the target)", ver.Phase, c.Database, c.Collection, verdict, c.SourceRows, c.TargetRows))
		}
	}
	var tb, hb bytes.Buffer
	t := template.Must(template.New("text").Parse(textTmpl))
	if err := t.ExecuteTemplate(&tb, n.Kind, v); err != nil {
		return "", "", "", err
	}
	h := htmltemplate.Must(htmltemplate.New("html").Parse(htmlTmpl))
	if err := h.Execute(&hb, v); err != nil {
		return "", "", "", err
	}
	return fmt.Sprintf(format, m.ID), tb.String(), hb.String(), nil
}
