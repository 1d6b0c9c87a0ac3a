package learnsim

// Variant is a named choice of Unsettled behaviours.
type Variant struct {
	Name      string
	Unsettled Unsettled
}

// Variants are the choices a client must pass: the default, each switch
// flipped on its own (each value of the multi-valued ones), and all flipped
// together. Tests of the client and of the sync run against every one.
// Throttle is flipped only in the "all flipped" ones: it shows only under
// injected refusals, so the tests with faults run each of its values
// (learn.TestRetriesConverge, syncer.TestSyncLearnFaults).
func Variants() []Variant {
	return []Variant{
		{"default", Unsettled{}},
		{"bare single object", Unsettled{BareSingleObject: true}},
		{"user update 204", Unsettled{UserUpdate204: true}},
		{"empty update refused", Unsettled{RefuseEmptyUpdate: true}},
		{"refused delete 409", Unsettled{RefusedDelete409: true}},
		{"terse errors", Unsettled{TerseErrors: true}},
		{"JSON by default", Unsettled{JSONByDefault: true}},
		{"root parent null", Unsettled{RootParent: RootParentNull}},
		{"root parent empty", Unsettled{RootParent: RootParentEmpty}},
		{"root parent nil UUID", Unsettled{RootParent: RootParentNilUUID}},
		{"root parent self", Unsettled{RootParent: RootParentSelf}},
		{"return object ignored", Unsettled{ReturnObject: ReturnObjectIgnored}},
		{"return object always", Unsettled{ReturnObject: ReturnObjectAlways}},
		{"dates DD.MM.YYYY", Unsettled{DateFormat: DateDotted}},
		{"dates as datetime", Unsettled{DateFormat: DateDateTime}},
		{"sibling names refused 400", Unsettled{SiblingNames: Clash400}},
		{"sibling names refused 409", Unsettled{SiblingNames: Clash409}},
		{"password required", Unsettled{PasswordRequired: true}},
		{"duplicate 400", Unsettled{Duplicate400: true}},
		{"duplicate on update 409", Unsettled{UpdateDuplicate409: true}},
		{"root subordination refused 400", Unsettled{RootSubordination: RootSub400}},
		{"root subordination refused 403", Unsettled{RootSubordination: RootSub403}},
		{"root subordination refused 409", Unsettled{RootSubordination: RootSub409}},
		{"root subordination ignored", Unsettled{RootSubordination: RootSubIgnored}},
		{"root links inherit", Unsettled{RootLinks: RootLinksInherit}},
		{"root links absent", Unsettled{RootLinks: RootLinksAbsent}},
		{"second role in userRoles", Unsettled{UserRoles: UserRolesSecond}},
		{"supervisor role in role", Unsettled{SupervisorRole: SupervisorRoleInRole}},
		{"supervisor role listed", Unsettled{SupervisorRole: SupervisorRoleListed}},
		{"supervisor role with departments", Unsettled{SupervisorRole: SupervisorRoleScoped}},
		{"supervisor role with departments, second role", Unsettled{SupervisorRole: SupervisorRoleScoped, UserRoles: UserRolesSecond}},
		{"all flipped", Unsettled{BareSingleObject: true, UserUpdate204: true, RefuseEmptyUpdate: true, RefusedDelete409: true, TerseErrors: true,
			JSONByDefault: true, RootParent: RootParentSelf, ReturnObject: ReturnObjectAlways, DateFormat: DateDotted,
			SiblingNames: Clash400, PasswordRequired: true, RootSubordination: RootSubIgnored, RootLinks: RootLinksAbsent, UserRoles: UserRolesSecond, UpdateNeedsLogin: true,
			SupervisorRole: SupervisorRoleScoped, UnknownRef404: true, BulkUnknown: BulkUnknownPartial, LastPage: LastPageAfterFull, CodeFilter: CodeFilterContains, UniqueCodes: Clash409,
			MoveKey: MoveKeyMisspelt, ExactFilters: true, StrictRequests: true, Throttle: Throttle503, MaxPageSize: 10, LeaverLinks: LeaverLinksInherit,
			CaseSensitiveUnique: true, Codes: CodesRefusedChars, HeaderAuthRetired: true, TokenForm: TokenFormBearer, KeyRefusal: KeyRefused400Client}},
		{"all flipped, nil UUID root", Unsettled{BareSingleObject: true, UserUpdate204: true, RefusedDelete409: true,
			TerseErrors: true, JSONByDefault: true, RootParent: RootParentNilUUID, ReturnObject: ReturnObjectAlways,
			SiblingNames: Clash409, PasswordRequired: true, RootSubordination: RootSub403, RootLinks: RootLinksInherit, UnknownID400: true,
			SupervisorRole: SupervisorRoleInRole, BulkUnknown: BulkUnknownIgnored, UpdateDuplicate409: true, LastPage: LastPageNull, CodeFilter: CodeFilterIgnored, UniqueCodes: Clash400,
			MoveKey: MoveKeyCorrect, StrictRequests: true, Throttle: ThrottleNoHeader, LoginEmailByDefault: true, LeaverLinks: LeaverLinksNoSupervisor,
			Codes: CodesCut, TokenForm: TokenFormBare, KeyRefusal: KeyRefused403}},
		{"long values cut", Unsettled{LongValues: LongValuesCut}},
		{"long values refused", Unsettled{LongValues: LongValuesRefused}},
		{"update needs login", Unsettled{UpdateNeedsLogin: true}},
		{"unknown ID 400", Unsettled{UnknownID400: true}},
		{"unknown department in a body 404", Unsettled{UnknownRef404: true}},
		{"unknown users in a bulk call ignored", Unsettled{BulkUnknown: BulkUnknownIgnored}},
		{"unknown users in a bulk call refused after the others", Unsettled{BulkUnknown: BulkUnknownPartial}},
		{"last page empty token", Unsettled{LastPage: LastPageEmpty}},
		{"last page null token", Unsettled{LastPage: LastPageNull}},
		{"full last page has a token", Unsettled{LastPage: LastPageAfterFull}},
		{"code filter contains", Unsettled{CodeFilter: CodeFilterContains}},
		{"code filter ignored", Unsettled{CodeFilter: CodeFilterIgnored}},
		{"unique codes 400", Unsettled{UniqueCodes: Clash400}},
		{"unique codes 409", Unsettled{UniqueCodes: Clash409}},
		{"move reads departmentIds", Unsettled{MoveKey: MoveKeyCorrect}},
		{"move reads departmnetIds", Unsettled{MoveKey: MoveKeyMisspelt}},
		{"exact filters", Unsettled{ExactFilters: true}},
		{"logins and e-mails unique with letter case", Unsettled{CaseSensitiveUnique: true}},
		{"empty refused, update needs login", Unsettled{RefuseEmptyUpdate: true, UpdateNeedsLogin: true}},
		{"strict requests", Unsettled{StrictRequests: true}},
		{"pages of at most 10", Unsettled{MaxPageSize: 10}},
		{"login e-mail by default", Unsettled{LoginEmailByDefault: true}},
		{"leavers' links become no_supervisor", Unsettled{LeaverLinks: LeaverLinksNoSupervisor}},
		{"leavers' links become inherit", Unsettled{LeaverLinks: LeaverLinksInherit}},
		{"header auth retired", Unsettled{HeaderAuthRetired: true}},
		{"token Bearer only", Unsettled{TokenForm: TokenFormBearer}},
		{"token bare only", Unsettled{TokenForm: TokenFormBare}},
		{"header auth retired, token bare only", Unsettled{HeaderAuthRetired: true, TokenForm: TokenFormBare}},
		{"key refused 401 invalid_client", Unsettled{KeyRefusal: KeyRefused401OAuth}},
		{"key refused 400 invalid_client", Unsettled{KeyRefusal: KeyRefused400Client}},
		{"key refused 400 invalid_grant", Unsettled{KeyRefusal: KeyRefused400Grant}},
		{"key refused 400 unauthorized_client", Unsettled{KeyRefusal: KeyRefused400Unauthorized}},
		{"key refused 403", Unsettled{KeyRefusal: KeyRefused403}},
	}
}

// NeedsAPIKey reports whether a client shows the choices of u only with an
// API key (Client ID and Secret): header auth is retired, or the token's
// form is one of the choices, or how a refused key is answered. Tests that run every Variant give the account
// and the client a key then.
func (u Unsettled) NeedsAPIKey() bool {
	return u.HeaderAuthRetired || u.TokenForm != TokenFormEither || u.KeyRefusal != KeyRefused401
}
