package templates

import (
	"strconv"
	"time"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// PeopleResults is the answer of the people search.
type PeopleResults struct {
	Lang   i18n.Lang
	People []PersonRow
	// More: a filter had more matches than one Bitrix24 page shows.
	More bool
}

// PersonRow is one employee found: name and e-mail come from Bitrix24.
type PersonRow struct {
	ID      int64
	Name    string
	Email   string
	Active  bool
	InScope bool
	Why     string // a why.* code
}

// PersonView is one employee: the verdict, the Learn user, the history and,
// after "Sync this employee", that job's state and its run's steps.
type PersonView struct {
	Lang       i18n.Lang
	ID         int64
	Name       string
	Email      string
	InScope    bool
	Why        string         // a why.* code
	Detail     syncer.Reasons // the reason recorded by the last run, or the user type
	Department string         // the department's name, or its id
	LearnID    string
	History    []HistoryRow
	Job        *PersonJob
}

// HistoryRow is one action a run took on the employee.
type HistoryRow struct {
	RunID   int64
	Trigger string
	At      time.Time
	Action  string
	Status  string
	Reason  syncer.Reasons
	Changes string
}

// PersonJob is a "Sync this employee" job: while it waits or runs the page
// asks again; once done, Run and Steps are its run and what it did.
type PersonJob struct {
	ID    int64
	State string // waiting, running, done, retry, failed
	Error string
	Run   *RunView
	Steps []PreviewItem
}

// personPoll is when the page asks for the person view again.
func personPoll(v PersonView) int {
	if v.Job != nil && (v.Job.State == "waiting" || v.Job.State == "running" || v.Job.State == "retry") {
		return 1000
	}
	return 0
}

func whyText(lang i18n.Lang, code string) string { return runText(lang, "why.", code) }

// personName is the employee's name, or their Bitrix24 id when Bitrix24
// gives none.
func personName(name string, id int64) string {
	if name != "" {
		return name
	}
	return "#" + strconv.FormatInt(id, 10)
}
