package templates

import (
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"
)

// SettingsView is everything the settings page shows.
type SettingsView struct {
	Lang   string // "ru" or "en"
	Token  string // the session token the page's requests send
	Admin  bool
	BX24JS string // where BX24.js is loaded from
	Form   SettingsForm
	// Tree is the department tree as JSON-ready data; nil when Bitrix24 could
	// not be asked (TreeError says why).
	Tree      any
	TreeError string
	// Scope is the stored selection: {"selected": [...], "excluded": [...]}.
	Scope  any
	Status StatusView
	// Activation is the activation form, when its component is available.
	Activation templ.Component
}

// SettingsForm holds the stored values; the password is never among them.
type SettingsForm struct {
	LearnURL                 string
	LearnEmail               string
	HasPassword              bool
	FirstRun                 string
	SecondRun                string
	SendLoginEmail           bool
	HeadsAsManagers          bool
	ParentHeadsAsSupervisors bool
}

// StatusView is the status panel.
type StatusView struct {
	Activation string // inactive, requested, active, suspended
	Configured bool   // Learn credentials and a first run are saved
	LastRun    *RunView
	NextRuns   []time.Time // UTC
	// DemoEvery is the demo's slot interval (0 outside the demo).
	DemoEvery time.Duration
	Runs      []RunView
	Held      *RunView // a run held by the deactivation safeguard, awaiting approval
	Error     string   // the status could not be read
	// Attention is the last sync error when syncs keep failing.
	Attention string
	// Reconnect: the app lost its Bitrix24 tokens; an admin has to open it.
	Reconnect bool
	// Reports: the user may open run reports and CSVs (admins only: they
	// list employees' names and e-mails).
	Reports bool
}

// RunView is one run in the status panel.
type RunView struct {
	ID        int64
	Trigger   string
	Status    string
	StartedAt time.Time
	Duration  time.Duration // 0 while running
	Counts    []Count
	Error     string
	HeldUsers int
}

// Count is one "created: 3" of a run.
type Count struct {
	Key string
	N   int
}

// liveTextKeys are the labels the page's script needs to redraw the status
// panel from GET /app/status.
var liveTextKeys = []string{"attention", "no_runs", "col_started", "col_result", "col_report", "open_report", "csv",
	"preview_none", "preview_more", "preview_running", "col_action", "col_name", "col_status", "not_configured", "sync_now_inactive",
	"do_create", "do_update", "do_move", "do_deactivate", "do_reactivate", "do_set_supervisor", "do_link", "kind_user", "kind_department"}

// ActivationNote is the sentence under the activation state: what happens
// next; none once the integration is active.
func ActivationNote(lang, state string) string {
	switch state {
	case "inactive":
		return t(lang, "act_note_inactive")
	case "requested":
		return t(lang, "act_note_request")
	case "suspended":
		return t(lang, "act_note_susp")
	}
	return ""
}

// t returns the text for key in the page's language (Russian or English).
func t(lang, key string) string {
	e, ok := settingsText[key]
	if !ok {
		return key
	}
	if lang == "ru" {
		return e[1]
	}
	return e[0]
}

// settingsText holds every label of the page: key → {English, Russian}. The
// Russian labels follow the install guide's wording.
var settingsText = map[string][2]string{
	"title":           {"iSpring Learn sync", "Модуль синхронизации iSpring Learn"},
	"intro":           {"Bitrix24 departments and employees are copied to iSpring Learn on a schedule.", "Подразделения и сотрудники Битрикс24 копируются в iSpring Learn по расписанию."},
	"readonly":        {"Only a portal administrator can change these settings.", "Изменять эти настройки может только администратор портала."},
	"sec_account":     {"iSpring Learn account", "Аккаунт iSpring Learn"},
	"learn_url":       {"Administrator account URL", "URL учетной записи администратора"},
	"learn_url_hint":  {"For example: https://learn.ispringlearn.ru", "Например: https://learn.ispringlearn.ru"},
	"learn_email":     {"Administrator e-mail", "Email администратора"},
	"learn_password":  {"Administrator password", "Пароль администратора"},
	"password_kept":   {"A password is saved. Leave the field empty to keep it.", "Пароль сохранён. Оставьте поле пустым, чтобы не менять его."},
	"sec_time":        {"Sync start time", "Время запуска синхронизации"},
	"time_hint":       {"Data is synced from Bitrix24 to iSpring Learn once a day at this time.", "Синхронизация будет происходить один раз в сутки в это время."},
	"first_run":       {"First run in UTC", "Первый запуск в UTC"},
	"second_run":      {"Second run in UTC", "Второй запуск в UTC"},
	"second_run_hint": {"Optional: to update the data twice a day, e.g. morning and evening.", "Необязательно: если нужно обновлять данные 2 раза в день, например утром и вечером."},
	"sec_notify":      {"User notifications", "Уведомления пользователям"},
	"send_login":      {"Send users their login details", "Уведомления пользователям: отправлять данные для входа"},
	"send_login_hint": {"If your company uses single sign-on (SSO) and employees sign in with corporate credentials, you can turn this off.", "Если в компании настроена технология единого входа (SSO) и сотрудники используют корпоративные данные для входа, опцию можно отключить."},
	"send_login_note": {"This option applies when the app adds a user to iSpring Learn. When the app activates a user again (an employee who returns, or one who waited for a free licence), iSpring Learn itself may e-mail them their sign-in details even with this option off: its API has no setting that prevents it.",
		"Параметр действует, когда приложение добавляет пользователя в iSpring Learn. Когда приложение снова активирует пользователя (вернувшегося сотрудника или ожидавшего свободную лицензию), iSpring Learn может сам отправить ему данные для входа, даже если параметр выключен: в API Learn нет настройки, которая это отключает."},
	"sec_heads":           {"Department heads", "Руководители подразделений"},
	"heads_managers":      {"Department heads become functional managers", "Руководитель департамента в Битрикс24 — функциональный руководитель в iSpring Learn"},
	"heads_managers_hint": {"The head of a Bitrix24 department becomes the functional manager of its iSpring Learn department.", "Руководитель департамента в Битрикс24 соответствует функциональному руководителю подразделения в iSpring Learn."},
	"parent_heads":        {"Heads of parent departments become supervisors", "Руководитель родительского департамента — руководитель в iSpring Learn"},
	"parent_heads_hint":   {"The head of the parent Bitrix24 department becomes the supervisor of the iSpring Learn department.", "Руководитель родительского департамента в Битрикс24 соответствует руководителю подразделения в iSpring Learn."},
	"sec_depts":           {"Departments to train in iSpring Learn", "Подразделения для обучения в iSpring Learn"},
	"depts_hint":          {"A ticked department includes its sub-departments, also those created later. Untick a sub-department to leave it out.", "Отмеченное подразделение включает свои дочерние подразделения, в том числе созданные позже. Снимите отметку с дочернего, чтобы исключить его."},
	"search":              {"Search by name", "Поиск по названию"},
	"select_all":          {"Select all", "Выбрать все"},
	"select_none":         {"Clear", "Снять все"},
	"expand_all":          {"Expand all", "Развернуть все"},
	"collapse_all":        {"Collapse all", "Свернуть все"},
	"tree_loading":        {"Loading departments…", "Загрузка подразделений…"},
	"tree_empty":          {"No departments match.", "Подразделения не найдены."},
	"tree_error":          {"The department list could not be loaded from Bitrix24. The saved selection is kept.", "Не удалось загрузить подразделения из Битрикс24. Сохранённый выбор не изменится."},
	"selected_n":          {"Selected departments:", "Выбрано подразделений:"},
	"employees":           {"employees", "сотрудников"},
	"save":                {"Save", "Сохранить"},
	"saving":              {"Checking the connection and saving…", "Проверяем подключение и сохраняем…"},
	"nojs":                {"This page needs JavaScript.", "Для работы страницы нужен JavaScript."},
	"session_ended":       {"Your session has ended. Open the app again from Bitrix24.", "Сеанс завершён. Откройте приложение в Битрикс24 заново."},
	"network_error":       {"The server could not be reached. Try again.", "Не удалось связаться с сервером. Повторите попытку."},

	"sec_status":        {"Sync status", "Состояние синхронизации"},
	"activation":        {"Integration", "Интеграция"},
	"act_inactive":      {"not activated", "не активирована"},
	"act_requested":     {"activation requested", "заявка на активацию отправлена"},
	"act_active":        {"active", "активна"},
	"act_suspended":     {"suspended", "приостановлена"},
	"act_note_inactive": {"Syncs start after an iSpring manager activates the integration. Fill in the activation form below.", "Синхронизация начнётся после активации интеграции менеджером iSpring. Заполните заявку ниже."},
	"act_note_request":  {"An iSpring manager will contact you to activate the integration.", "Менеджер iSpring свяжется с вами, чтобы активировать интеграцию."},
	"act_note_susp":     {"The integration is suspended: scheduled syncs do not run.", "Интеграция приостановлена: синхронизация по расписанию не выполняется."},
	"not_configured":    {"Save the settings to schedule syncs.", "Сохраните настройки, чтобы запланировать синхронизацию."},
	"last_run":          {"Last run", "Последний запуск"},
	"no_runs":           {"No runs yet.", "Запусков ещё не было."},
	"next_runs":         {"Next runs", "Следующие запуски"},
	"demo_every":        {"Demo: scheduled runs every %d min instead of the times above.", "Демо: плановые запуски каждые %d мин вместо указанного времени."},
	"local_time":        {"your time", "ваше время"},
	"runs":              {"Run reports", "Отчёты о запусках"},
	"col_started":       {"Started (UTC)", "Начало (UTC)"},
	"col_trigger":       {"Trigger", "Запуск"},
	"col_result":        {"Result", "Результат"},
	"col_counts":        {"Changes", "Изменения"},
	"col_duration":      {"Duration", "Длительность"},
	"col_report":        {"Report", "Отчёт"},
	"open_report":       {"Open", "Открыть"},
	"csv":               {"CSV", "CSV"},
	"preview":           {"Preview", "Предпросмотр"},
	"preview_hint":      {"A dry run: what the next sync would create, update, move or deactivate. Nothing is written.", "Пробный запуск: что следующая синхронизация создаст, изменит, переместит или отключит. Ничего не записывается."},
	"sync_now":          {"Sync now", "Синхронизировать сейчас"},
	"sync_now_inactive": {"Available once the integration is active.", "Доступно после активации интеграции."},
	"approve":           {"Approve deactivations", "Подтвердить отключения"},
	"held_note":         {"A run was held: it would deactivate many users at once. Check its report, then approve.", "Запуск приостановлен: он отключил бы сразу много пользователей. Проверьте отчёт и подтвердите."},
	"held_users":        {"users waiting", "пользователей ожидают"},
	"report_title":      {"Run report", "Отчёт о запуске"},
	"report_empty":      {"This run changed nothing.", "Этот запуск ничего не изменил."},
	"close":             {"Close", "Закрыть"},
	"col_kind":          {"Object", "Объект"},
	"col_action":        {"Action", "Действие"},
	"col_name":          {"Name", "Название"},
	"col_status":        {"Status", "Статус"},
	"col_reason":        {"Details", "Подробности"},
	"status_error":      {"The sync status could not be read.", "Не удалось получить состояние синхронизации."},
	"sec_activation":    {"Activation", "Активация"},
	"attention":         {"Syncs keep failing. The last error:", "Синхронизация несколько раз завершилась ошибкой. Последняя ошибка:"},
	"reconnect":         {"The app lost its access to Bitrix24. A portal administrator has to open the app once to restore it.", "Приложение потеряло доступ к Битрикс24. Администратору портала нужно один раз открыть приложение, чтобы восстановить его."},

	"preview_title":     {"Preview: what the next sync would do", "Предпросмотр: что сделает следующая синхронизация"},
	"preview_none":      {"The next sync would change nothing.", "Следующая синхронизация ничего не изменит."},
	"preview_more":      {"more in the report", "ещё в отчёте"},
	"preview_running":   {"The preview is being prepared…", "Предпросмотр готовится…"},
	"do_create":         {"create", "создать"},
	"do_update":         {"update", "изменить"},
	"do_move":           {"move", "переместить"},
	"do_deactivate":     {"deactivate", "деактивировать"},
	"do_reactivate":     {"reactivate", "восстановить"},
	"do_set_supervisor": {"set manager", "назначить руководителя"},
	"do_link":           {"link", "связать"},
	"kind_user":         {"user", "пользователь"},
	"kind_department":   {"department", "подразделение"},

	"trig_scheduled": {"scheduled", "по расписанию"},
	"trig_manual":    {"manual", "вручную"},
	"trig_approved":  {"approved", "после подтверждения"},
	"trig_preview":   {"preview", "предпросмотр"},
	"st_running":     {"running", "выполняется"},
	"st_succeeded":   {"succeeded", "успешно"},
	"st_partial":     {"partly done", "частично"},
	"st_held":        {"held", "приостановлен"},
	"st_failed":      {"failed", "ошибка"},
	"st_previewed":   {"preview ready", "предпросмотр готов"},
}

// pageLang maps a portal language to the page's: Russian for the
// Russian-speaking portals, English otherwise.
func pageLang(lang string) string {
	switch strings.ToLower(lang) {
	case "ru", "ua", "uk", "by", "be", "kz":
		return "ru"
	}
	return "en"
}

// PageLang is pageLang for the handlers.
func PageLang(lang string) string { return pageLang(lang) }

func fmtUTC(tm time.Time) string { return tm.UTC().Format("2006-01-02 15:04") + " UTC" }

func fmtISO(tm time.Time) string { return tm.UTC().Format(time.RFC3339) }

func fmtDuration(d time.Duration) string {
	if d <= 0 {
		return "—"
	}
	if d < time.Second {
		return d.Round(time.Millisecond).String()
	}
	return d.Round(time.Second).String()
}

func activationText(lang, state string) string { return t(lang, "act_"+state) }

func runText(lang, prefix, v string) string {
	if _, ok := settingsText[prefix+v]; ok {
		return t(lang, prefix+v)
	}
	return v
}

func countsText(lang string, cs []Count) string {
	if len(cs) == 0 {
		return "—"
	}
	var b strings.Builder
	for i, c := range cs {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(countLabel(lang, c.Key))
		b.WriteString(": ")
		b.WriteString(strconv.Itoa(c.N))
	}
	return b.String()
}

// countLabels name a run's counts ("kind.action" as the syncer keys them)
// in words; an unknown key is shown as it is.
var countLabels = map[string][2]string{
	"department.create":         {"departments created", "создано подразделений"},
	"department.update":         {"departments updated", "изменено подразделений"},
	"department.move":           {"departments moved", "перемещено подразделений"},
	"department.set_supervisor": {"department heads set", "назначено руководителей подразделений"},
	"department.link":           {"departments linked", "связано подразделений"},
	"department.refused":        {"departments refused", "отклонено подразделений"},
	"department.failed":         {"departments failed", "ошибок в подразделениях"},
	"user.create":               {"users created", "создано пользователей"},
	"user.update":               {"users updated", "изменено пользователей"},
	"user.move":                 {"users moved", "переведено пользователей"},
	"user.deactivate":           {"users deactivated", "деактивировано пользователей"},
	"user.reactivate":           {"users reactivated", "восстановлено пользователей"},
	"user.set_supervisor":       {"supervisors set", "назначено руководителей"},
	"user.link":                 {"users linked", "связано пользователей"},
	"user.refused":              {"users refused", "отклонено пользователей"},
	"user.failed":               {"users failed", "ошибок у пользователей"},
	"user.held":                 {"deactivations held", "отложено деактиваций"},
	"user.waiting":              {"waiting for a licence", "ждут лицензию"},
	"user.conflict":             {"shared with another portal", "общих с другим порталом"},
	"learn.parallel_max":        {"most Learn writes at once", "наибольшее число одновременных записей в Learn"},
	"learn.parallel_mean":       {"Learn writes at once on average", "одновременных записей в Learn в среднем"},
	"learn.throttled":           {"times Learn asked to slow down (429)", "раз Learn просил снизить темп (429)"},
}

// RunCount is one count of a run, 0 for no run.
func RunCount(r *RunView, key string) int {
	if r == nil {
		return 0
	}
	for _, c := range r.Counts {
		if c.Key == key {
			return c.N
		}
	}
	return 0
}

// ruForm picks the Russian word form for n: one (1, 21), few (2-4, 22-24),
// many (0, 5-20, 25...).
func ruForm(n int, one, few, many string) string {
	switch n10, n100 := n%10, n%100; {
	case n10 == 1 && n100 != 11:
		return one
	case n10 >= 2 && n10 <= 4 && (n100 < 12 || n100 > 14):
		return few
	}
	return many
}

// LicenceNote is the status panel's sentence on employees the last run left
// waiting for a licence (Learn's plan is full); "" when there are none.
func LicenceNote(lang string, waiting int) string {
	if waiting <= 0 {
		return ""
	}
	n := strconv.Itoa(waiting)
	if lang == "ru" {
		return n + " " + ruForm(waiting, "сотрудник ждёт", "сотрудника ждут", "сотрудников ждут") +
			" лицензию iSpring Learn: активные пользователи тарифа закончились. Их активируют, когда в iSpring Learn освободятся места, или при попытке раз в сутки."
	}
	if waiting == 1 {
		return "1 employee is waiting for an iSpring Learn licence: the plan's active users are used up. They are activated when seats free up in iSpring Learn, or by the daily retry."
	}
	return n + " employees are waiting for an iSpring Learn licence: the plan's active users are used up. They are activated when seats free up in iSpring Learn, or by the daily retry."
}

// ConflictNote is the status panel's sentence on employees whose iSpring
// Learn user another portal of the same Learn account also matches; "" when
// there are none.
func ConflictNote(lang string, n int) string {
	if n <= 0 {
		return ""
	}
	s := strconv.Itoa(n)
	if lang == "ru" {
		return s + " " + ruForm(n, "сотрудник есть", "сотрудника есть", "сотрудников есть") +
			" и в другом портале, подключённом к этому аккаунту iSpring Learn. Пользователем iSpring Learn управляет только портал, который первым его синхронизировал; в отчёте о запуске указано, какой."
	}
	if n == 1 {
		return "1 employee is also in another portal connected to this iSpring Learn account. A Learn user is managed only by the portal that synced it first; the run report names it."
	}
	return s + " employees are also in another portal connected to this iSpring Learn account. A Learn user is managed only by the portal that synced it first; the run report names it."
}

func countLabel(lang, key string) string {
	l, ok := countLabels[key]
	if !ok {
		return key
	}
	if lang == "ru" {
		return l[1]
	}
	return l[0]
}

// RunLabels are a run's texts as the status panel shows them.
type RunLabels struct {
	Started, Trigger, Status, Counts, Duration string
}

// LabelRun gives the texts of r in lang, as the panel renders them, for
// the page's live updates.
func LabelRun(lang string, r RunView) RunLabels {
	return RunLabels{Started: fmtUTC(r.StartedAt), Trigger: runText(lang, "trig_", r.Trigger),
		Status: runText(lang, "st_", r.Status), Counts: countsText(lang, r.Counts), Duration: fmtDuration(r.Duration)}
}

// FmtUTC is how the page writes a time: "2006-01-02 15:04 UTC".
func FmtUTC(tm time.Time) string { return fmtUTC(tm) }

// Text is the page's label for key in lang.
func Text(lang, key string) string { return t(lang, key) }
