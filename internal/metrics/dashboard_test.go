package metrics

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/riverqueue/river/rivertype"
)

const dashboardFile = "../../deploy/grafana/b24learn.json"

// The Grafana dashboard is importable (its data source is an input) and
// every query names only metrics and labels this package exports, so that
// renaming one breaks this test rather than the operator's dashboard.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Inputs []struct{ Name, Type, PluginID string } `json:"__inputs"`
		Panels []json.RawMessage                       `json:"panels"`
	}
	if err := json.Unmarshal(raw, &dash); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	if len(dash.Inputs) != 1 || dash.Inputs[0].Name != "DS_PROMETHEUS" || dash.Inputs[0].PluginID != "prometheus" {
		t.Errorf("__inputs = %+v, want the one Prometheus data source DS_PROMETHEUS", dash.Inputs)
	}
	exported := exportedSeries(t)
	var exprs int
	for _, p := range dash.Panels {
		var panel struct {
			Title      string
			Type       string
			Datasource struct{ UID string }
			Targets    []struct {
				Expr       string
				Datasource struct{ UID string }
			}
		}
		if err := json.Unmarshal(p, &panel); err != nil {
			t.Fatal(err)
		}
		if panel.Type == "row" {
			continue
		}
		if panel.Datasource.UID != "${DS_PROMETHEUS}" {
			t.Errorf("panel %q: data source %q, want ${DS_PROMETHEUS}", panel.Title, panel.Datasource.UID)
		}
		if len(panel.Targets) == 0 {
			t.Errorf("panel %q has no query", panel.Title)
		}
		for _, target := range panel.Targets {
			exprs++
			if target.Datasource.UID != "${DS_PROMETHEUS}" {
				t.Errorf("panel %q: query data source %q, want ${DS_PROMETHEUS}", panel.Title, target.Datasource.UID)
			}
			if err := checkQuery(target.Expr, exported); err != nil {
				t.Errorf("panel %q: %s: %v", panel.Title, target.Expr, err)
			}
		}
	}
	// The overview the README promises.
	for _, name := range []string{"b24learn_syncs_total", "b24learn_sync_duration_seconds_bucket",
		"b24learn_sync_objects_total", "b24learn_river_queue_depth", "b24learn_http_requests_total",
		"b24learn_b24_refused_total"} {
		if !strings.Contains(string(raw), name) {
			t.Errorf("the dashboard does not query %s", name)
		}
	}
	if exprs < 10 {
		t.Errorf("%d queries; the dashboard lost its panels", exprs)
	}
}

// The check itself catches a renamed metric, an unknown label and a query
// that names no metric at all.
func TestCheckQueryRefuses(t *testing.T) {
	t.Parallel()
	exported := exportedSeries(t)
	good := `sum by (result) (increase(b24learn_syncs_total{trigger!="preview"}[1h]))`
	if err := checkQuery(good, exported); err != nil {
		t.Fatalf("%s: %v", good, err)
	}
	for _, bad := range []string{
		`sum by (result) (increase(b24learn_sync_total[1h]))`,
		`sum by (outcome) (increase(b24learn_syncs_total[1h]))`,
		`sum(rate(b24learn_http_requests_total{status=~"5.."}[$__rate_interval]))`,
		`histogram_quantile(0.5, sum by (le) (rate(b24learn_syncs_total_bucket[1h])))`,
		`vector(1)`,
	} {
		if err := checkQuery(bad, exported); err == nil {
			t.Errorf("%s passed", bad)
		}
	}
}

// exportedSeries scrapes a registry with every collector holding a series
// and returns each sample name with its label names: a histogram's _bucket
// (with le), _sum and _count. A collector added to New shows up here once
// it is given a series below.
func exportedSeries(t *testing.T) map[string][]string {
	t.Helper()
	m := New()
	m.ObserveHTTP("GET /", "GET", 200, time.Millisecond)
	m.ObserveSync("manual", "succeeded", time.Second, map[string]int{"user.create": 1})
	m.Jobs.WithLabelValues("sync", "failed").Inc()
	m.JobDuration.WithLabelValues("sync").Observe(1)
	m.B24Refused.WithLabelValues("malformed").Inc()
	q := &fakeQueue{counts: map[string]map[rivertype.JobState]int64{"sync": {rivertype.JobStateAvailable: 1}}}
	if err := m.RegisterQueueDepth(q, time.Second, nil); err != nil {
		t.Fatal(err)
	}
	families, err := m.Registry.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	add := func(name string, labels []string) {
		for _, l := range labels {
			if !slices.Contains(out[name], l) {
				out[name] = append(out[name], l)
			}
		}
		if out[name] == nil {
			out[name] = []string{}
		}
	}
	for _, f := range families {
		for _, s := range f.GetMetric() {
			var labels []string
			for _, lp := range s.GetLabel() {
				labels = append(labels, lp.GetName())
			}
			switch f.GetType().String() {
			case "HISTOGRAM":
				add(f.GetName()+"_bucket", append(slices.Clone(labels), "le"))
				add(f.GetName()+"_sum", labels)
				add(f.GetName()+"_count", labels)
			case "SUMMARY":
				add(f.GetName(), append(slices.Clone(labels), "quantile"))
				add(f.GetName()+"_sum", labels)
				add(f.GetName()+"_count", labels)
			default:
				add(f.GetName(), labels)
			}
		}
	}
	if len(out["b24learn_syncs_total"]) == 0 {
		t.Fatal("the scrape lacks b24learn_syncs_total")
	}
	return out
}

// checkQuery reads the subset of PromQL the dashboard uses: selectors with
// label matchers, range brackets, function calls, by/without groupings and
// Grafana's $variables. Every metric must be exported, every matcher label
// must be one of its metric's, every grouping label one of the query's.
func checkQuery(expr string, exported map[string][]string) error {
	var metrics, grouping []string
	queryLabels := map[string]bool{}
	s := expr
	for s != "" {
		c := s[0]
		switch {
		case c == '"' || c == '\'' || c == '`':
			end := strings.IndexByte(s[1:], c)
			if end < 0 {
				return fmt.Errorf("unterminated string")
			}
			s = s[end+2:]
		case c == '[':
			end := strings.IndexByte(s, ']')
			if end < 0 {
				return fmt.Errorf("unterminated range")
			}
			s = s[end+1:]
		case c == '{':
			end := strings.IndexByte(s, '}') // matcher values hold no braces here
			if end < 0 {
				return fmt.Errorf("unterminated matchers")
			}
			if len(metrics) == 0 {
				return fmt.Errorf("matchers without a metric name")
			}
			metric := metrics[len(metrics)-1]
			for _, m := range splitMatchers(s[1:end]) {
				if !slices.Contains(exported[metric], m) {
					return fmt.Errorf("%s has no label %q (it has %v)", metric, m, exported[metric])
				}
			}
			s = s[end+1:]
		case c == '$':
			s = strings.TrimLeft(s[1:], "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_")
		case isIdentStart(c):
			n := 1
			for n < len(s) && (isIdentStart(s[n]) || (s[n] >= '0' && s[n] <= '9')) {
				n++
			}
			word, rest := s[:n], strings.TrimLeft(s[n:], " ")
			s = s[n:]
			switch {
			case word == "by" || word == "without" || word == "on" || word == "ignoring":
				if !strings.HasPrefix(rest, "(") {
					return fmt.Errorf("%s without a label list", word)
				}
				end := strings.IndexByte(rest, ')')
				if end < 0 {
					return fmt.Errorf("unterminated %s list", word)
				}
				for _, l := range strings.Split(rest[1:end], ",") {
					if l = strings.TrimSpace(l); l != "" {
						grouping = append(grouping, l)
					}
				}
				s = rest[end+1:]
			case word == "and" || word == "or" || word == "unless" || word == "bool":
			case aggregations[word]: // its grouping may come before its "("
			case strings.HasPrefix(rest, "("): // a function or an aggregation
			default:
				labels, ok := exported[word]
				if !ok {
					return fmt.Errorf("%s is not exported", word)
				}
				metrics = append(metrics, word)
				for _, l := range labels {
					queryLabels[l] = true
				}
			}
		case c >= '0' && c <= '9' || c == '.':
			s = strings.TrimLeft(s, "0123456789.eE")
		default:
			s = s[1:]
		}
	}
	if len(metrics) == 0 {
		return fmt.Errorf("names no metric")
	}
	for _, l := range grouping {
		if !queryLabels[l] {
			return fmt.Errorf("groups by %q, which none of %v has", l, metrics)
		}
	}
	return nil
}

// splitMatchers returns the label names of `a="x", b=~"y|z"`.
func splitMatchers(s string) []string {
	var names []string
	for s != "" {
		s = strings.TrimLeft(s, " ,")
		op := strings.IndexAny(s, "=!")
		if op < 0 {
			break
		}
		names = append(names, strings.TrimSpace(s[:op]))
		q := strings.IndexAny(s[op:], `"'`)
		if q < 0 {
			break
		}
		q += op
		end := strings.IndexByte(s[q+1:], s[q])
		if end < 0 {
			break
		}
		s = s[q+1+end+1:]
	}
	return names
}

var aggregations = map[string]bool{"sum": true, "min": true, "max": true, "avg": true, "group": true,
	"count": true, "count_values": true, "stddev": true, "stdvar": true, "topk": true, "bottomk": true, "quantile": true}

func isIdentStart(c byte) bool {
	return c == '_' || c == ':' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
}

// Every instance counts River's queue in the one shared database, so each
// exports the same depth: a panel that sums the series over instances shows
// the queue N times as deep with N instances. The dashboard takes one
// instance's count (max per kind and state) before it adds kinds up.
func TestDashboardCountsTheSharedQueueOnce(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var found int
	for _, part := range strings.Split(string(raw), `"expr": "`)[1:] {
		expr, _, _ := strings.Cut(part, `"`)
		if !strings.Contains(expr, "b24learn_river_queue_depth") {
			continue
		}
		found++
		if !strings.Contains(expr, "max by (kind, state) (b24learn_river_queue_depth") {
			t.Errorf("%s adds the instances' equal counts up", expr)
		}
	}
	if found == 0 {
		t.Error("no panel shows the queue depth")
	}
}
