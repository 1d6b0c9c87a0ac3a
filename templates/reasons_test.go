package templates

import (
	"testing"

	"b24learn/internal/i18n"
	"b24learn/internal/syncer"
)

// A run item's reasons read in the page's language, their arguments as
// they are (codes among them in the language too); text stored before
// reasons had codes, and a code the catalogue lacks, still read.
func TestReasonsText(t *testing.T) {
	t.Parallel()
	rs := syncer.Reasons{
		{Code: syncer.ReasonRemembered},
		{Code: syncer.ReasonCut, Args: []string{"50"}},
		{Code: syncer.ReasonFieldLeftOut, Args: []string{"shoe_size", "needs_date"}},
	}
	if got, want := ReasonsText(i18n.RU, rs), "не отправляется повторно, пока не изменится в Битрикс24: Learn отклонил это в прошлом запуске; "+
		"Learn отклонил длинное значение; отправлено сокращённым до 50 символов; "+
		"поле shoe_size не заполнялось в этом запуске: поле Learn теперь дата, а поле Битрикс24 — текст; проверьте соответствие полей"; got != want {
		t.Errorf("ru:\n got %q\nwant %q", got, want)
	}
	if got := ReasonsText(i18n.EN, syncer.Reasons{{Code: syncer.ReasonEmailShared, Args: []string{"a@b.ru", "21"}}}); got != "e-mail a@b.ru is also used by Bitrix24 user 21" {
		t.Errorf("en: %q", got)
	}
	if got := ReasonsText(i18n.RU, syncer.Reasons{{Code: syncer.ReasonText, Args: []string{"an old reason"}}, {Code: "from_the_future", Args: []string{"x"}}}); got != "an old reason; from_the_future x" {
		t.Errorf("old and unknown: %q", got)
	}
}
