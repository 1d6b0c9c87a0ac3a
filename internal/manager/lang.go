package manager

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"b24learn/internal/i18n"
	"b24learn/internal/store"
)

// SetLang keeps the console language a manager chose.
func SetLang(ctx context.Context, db store.DBTX, managerID int64, lang i18n.Lang) error {
	if lang != i18n.RU && lang != i18n.EN {
		return fmt.Errorf("set console language: unknown language %q", lang)
	}
	tag, err := db.Exec(ctx, `UPDATE managers SET lang = $2 WHERE id = $1`, managerID, string(lang))
	if err != nil {
		return fmt.Errorf("set console language: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return ErrNotFound
	}
	return nil
}

// MailLangs is the language of each address's e-mail: the choice of the
// manager account with that e-mail (matched without case), else the
// deployment's default (DefaultMailLang). The map is keyed by the address
// as given.
func MailLangs(ctx context.Context, db store.DBTX, addrs []string) (map[string]i18n.Lang, error) {
	rows, err := db.Query(ctx, `SELECT lower(email), lang FROM managers WHERE lang IS NOT NULL AND NOT disabled`)
	if err != nil {
		return nil, fmt.Errorf("read managers' languages: %w", err)
	}
	chosen := map[string]i18n.Lang{}
	var email, lang string
	if _, err := pgx.ForEachRow(rows, []any{&email, &lang}, func() error {
		chosen[email] = i18n.Lang(lang)
		return nil
	}); err != nil {
		return nil, fmt.Errorf("read managers' languages: %w", err)
	}
	def := DefaultMailLang(chosen)
	out := make(map[string]i18n.Lang, len(addrs))
	for _, a := range addrs {
		if l, ok := chosen[strings.ToLower(strings.TrimSpace(a))]; ok {
			out[a] = l
		} else {
			out[a] = def
		}
	}
	return out, nil
}

// DefaultMailLang is the language for addresses without a choice of their
// own (MANAGER_EMAILS that are no manager account, or one that never
// switched): Russian when more managers chose Russian than English, else
// English, as the e-mail always was before managers could choose.
func DefaultMailLang(chosen map[string]i18n.Lang) i18n.Lang {
	en, ru := 0, 0
	for _, l := range chosen {
		if l == i18n.RU {
			ru++
		} else {
			en++
		}
	}
	if ru > en {
		return i18n.RU
	}
	return i18n.EN
}
