package b24sim

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"time"
)

var (
	latinFirst = []string{"Anna", "Klaus", "Maria", "John", "Emma", "Lukas", "Sophie", "David", "Laura", "Thomas",
		"Julia", "Michael", "Sarah", "Daniel", "Lena", "Peter", "Olivia", "James", "Mia", "Paul"}
	latinLast = []string{"Schmidt", "Weber", "Müller", "Smith", "Johnson", "Fischer", "Wagner", "Brown", "Becker",
		"Hoffmann", "Taylor", "Schulz", "Wilson", "Koch", "Richter", "Clark", "Wolf", "Lewis", "Neumann", "O'Brien"}
	cyrFirstM = []string{"Иван", "Алексей", "Дмитрий", "Сергей", "Андрей", "Михаил", "Николай", "Павел", "Артём", "Юрий"}
	cyrFirstF = []string{"Анна", "Мария", "Елена", "Ольга", "Наталья", "Татьяна", "Ирина", "Светлана", "Юлия", "Дарья"}
	cyrLast   = []string{"Иванов", "Смирнов", "Кузнецов", "Попов", "Васильев", "Петров", "Соколов", "Михайлов", "Новиков", "Фёдоров"}
	cyrMid    = []string{"Иванович", "Петрович", "Сергеевич", "Андреевич", "Алексеевич"}
	translit  = map[rune]string{'а': "a", 'б': "b", 'в': "v", 'г': "g", 'д': "d", 'е': "e", 'ё': "e", 'ж': "zh", 'з': "z",
		'и': "i", 'й': "y", 'к': "k", 'л': "l", 'м': "m", 'н': "n", 'о': "o", 'п': "p", 'р': "r", 'с': "s", 'т': "t",
		'у': "u", 'ф': "f", 'х': "kh", 'ц': "ts", 'ч': "ch", 'ш': "sh", 'щ': "sch", 'ы': "y", 'э': "e", 'ю': "yu",
		'я': "ya", 'ь': "", 'ъ': "", 'ü': "ue", 'ö': "oe", 'ä': "ae", '\'': ""}
	deptNames = []string{"Engineering", "Sales", "Marketing", "Finance", "HR", "Support", "Legal", "Logistics",
		"Отдел продаж", "Бухгалтерия", "Разработка", "Служба поддержки", "Склад", "R&D", "QA", "Design",
		"Procurement", "Отдел кадров", "Production", "Security <Ops>"}
	positions = []string{"Engineer", "Manager", "Analyst", "Specialist", "Accountant", "Designer", "Менеджер",
		"Инженер", "Бухгалтер", "Consultant", "Operator", ""}
)

func latin(s string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(s) {
		if t, ok := translit[r]; ok {
			b.WriteString(t)
		} else if r < 128 {
			b.WriteRune(r)
		}
	}
	return b.String()
}

// Invite marks n of the org's users as invited and not accepted yet
// (never signed in), the same ones for the same org: active employees other
// than the admins and department heads, spread over the ID range. It
// returns their IDs.
func (o *Org) Invite(n int) []int64 {
	heads := map[int64]bool{}
	for _, d := range o.Departments {
		heads[d.Head] = true
	}
	var pool []int
	for i, u := range o.Users {
		if u.Active && !u.Extranet && !u.Admin && !heads[u.ID] {
			pool = append(pool, i)
		}
	}
	n = min(n, len(pool))
	ids := make([]int64, 0, n)
	for k := range n {
		u := &o.Users[pool[k*len(pool)/n]]
		u.Invited, u.LastLogin = true, time.Time{}
		ids = append(ids, u.ID)
	}
	return ids
}

// GenerateOrg builds a realistic org, the same for the same seed: department 1
// is the root (its head, user 1, is the portal admin); departments form a tree
// with heads (about one in ten has none); about 8% of users are fired, 3% are
// extranet users without a department, 5% belong to two departments and 5%
// have no e-mail; half the names are Cyrillic. User IDs have gaps, as on real
// portals where users were deleted.
func GenerateOrg(seed int64, employees, departments int) Org {
	rng := rand.New(rand.NewPCG(uint64(seed), uint64(seed)^0x9e3779b97f4a7c15))
	if departments < 1 {
		departments = 1
	}
	org := Org{Name: "Acme Corp"}
	org.Departments = append(org.Departments, Department{ID: 1, Name: "Acme Corp", Sort: 500})
	for i := 2; i <= departments; i++ {
		// Prefer recent parents a little, so the tree gets some depth.
		parent := int64(1 + rng.IntN(i-1))
		if i > 3 && rng.IntN(3) == 0 {
			parent = int64(max(1, i-1-rng.IntN(3)))
		}
		name := deptNames[rng.IntN(len(deptNames))]
		if i > len(deptNames) {
			name = fmt.Sprintf("%s %d", name, i)
		}
		org.Departments = append(org.Departments, Department{ID: int64(i), Name: name, Parent: parent, Sort: 100 * (1 + rng.IntN(5))})
	}
	used := map[string]int{}
	id := int64(0)
	reg := time.Date(2023, 1, 10, 9, 0, 0, 0, time.UTC)
	for n := 0; n < employees; n++ {
		id++
		if n > 0 && rng.IntN(20) == 0 {
			id += int64(1 + rng.IntN(3)) // deleted users leave gaps
		}
		u := User{ID: id, Active: true, DateRegister: reg.Add(time.Duration(n) * 37 * time.Minute)}
		if rng.IntN(2) == 0 {
			female := rng.IntN(2) == 0
			if female {
				u.Name = cyrFirstF[rng.IntN(len(cyrFirstF))]
				u.LastName = cyrLast[rng.IntN(len(cyrLast))] + "а"
			} else {
				u.Name = cyrFirstM[rng.IntN(len(cyrFirstM))]
				u.LastName = cyrLast[rng.IntN(len(cyrLast))]
			}
			if rng.IntN(3) == 0 {
				u.SecondName = cyrMid[rng.IntN(len(cyrMid))]
				if female {
					u.SecondName = strings.TrimSuffix(u.SecondName, "ич") + "на"
				}
			}
		} else {
			u.Name = latinFirst[rng.IntN(len(latinFirst))]
			u.LastName = latinLast[rng.IntN(len(latinLast))]
		}
		local := latin(u.Name)[:1] + "." + latin(u.LastName)
		used[local]++
		if used[local] > 1 {
			local = fmt.Sprintf("%s%d", local, used[local])
		}
		u.Email = local + "@example.com"
		u.WorkPosition = positions[rng.IntN(len(positions))]
		if rng.IntN(3) == 0 {
			u.PersonalMobile = fmt.Sprintf("+4917%08d", rng.IntN(1e8))
		}
		if rng.IntN(4) == 0 {
			u.WorkPhone = fmt.Sprintf("+4930%07d", rng.IntN(1e7))
		}
		switch {
		case n == 0:
			u.Admin, u.Departments, u.WorkPosition = true, []int64{1}, "CEO"
		case rng.IntN(33) == 0:
			u.Extranet = true
		default:
			u.Departments = []int64{int64(1 + rng.IntN(departments))}
			if departments > 1 && rng.IntN(20) == 0 {
				second := int64(1 + rng.IntN(departments))
				if second != u.Departments[0] {
					u.Departments = append(u.Departments, second)
				}
			}
		}
		if n > 0 && rng.IntN(12) == 0 {
			u.Active = false
		}
		if n > 0 && rng.IntN(20) == 0 {
			u.Email = ""
		}
		if n > 0 && n < 3 {
			u.Admin = n == 1 // a second admin
		}
		u.LastLogin = u.DateRegister.Add(26 * time.Hour) // everyone generated has joined
		org.Users = append(org.Users, u)
	}
	// Heads: an active employee of the department, else someone active.
	members := map[int64][]int64{}
	for _, u := range org.Users {
		if u.Active {
			for _, d := range u.Departments {
				members[d] = append(members[d], u.ID)
			}
		}
	}
	for i := range org.Departments {
		d := &org.Departments[i]
		switch {
		case d.ID == 1 && len(org.Users) > 0:
			d.Head = org.Users[0].ID
		case rng.IntN(10) == 0:
			// no head
		case len(members[d.ID]) > 0:
			d.Head = members[d.ID][rng.IntN(len(members[d.ID]))]
		case len(org.Users) > 0:
			d.Head = org.Users[rng.IntN(len(org.Users))].ID
		}
	}
	return org
}

// AddNamedDepartments adds n departments under the root, each named name:
// the tree of a hostile self-hosted portal, whose owner may answer with
// 100,000 departments of kilobytes each. The rows share name's bytes, so
// the simulator holds it once however many rows serve it.
func (o *Org) AddNamedDepartments(n int, name string) {
	root, next := int64(0), int64(0)
	for _, d := range o.Departments {
		next = max(next, d.ID)
		if d.Parent == 0 && root == 0 {
			root = d.ID
		}
	}
	o.Departments = slices.Grow(o.Departments, n)
	for i := 1; i <= n; i++ {
		o.Departments = append(o.Departments, Department{ID: next + int64(i), Name: name, Parent: root, Sort: 500})
	}
}
