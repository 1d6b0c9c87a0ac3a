package bitrix24

import (
	"encoding/json"
	"fmt"
)

// DecodeUsers reads a user.get page (a list, or a PHP list sent as an
// object) from a batch answer.
func DecodeUsers(raw json.RawMessage) ([]User, error) {
	var us []User
	if err := decodePage(raw, &us); err != nil {
		return nil, fmt.Errorf("decode users: %w", err)
	}
	return us, nil
}

// DecodeDepartments reads a department.get page from a batch answer.
func DecodeDepartments(raw json.RawMessage) ([]Department, error) {
	var ds []Department
	if err := decodePage(raw, &ds); err != nil {
		return nil, fmt.Errorf("decode departments: %w", err)
	}
	return ds, nil
}
