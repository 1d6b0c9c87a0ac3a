package learnsim

import "b24learn/internal/simvariant"

// Variant is a named choice of Unsettled behaviours.
type Variant = simvariant.Variant[Unsettled]

// Variants are the choices a client must pass (simvariant.Variant says
// which). Tests of the client and of the sync run against every one.
// Throttle is flipped only in the "all flipped" ones: it shows only under
// injected refusals, so the tests with faults run each of its values
// (learn.TestRetriesConverge, syncer.TestSyncLearnFaults).
func Variants() []Variant {
	return []Variant{
		{Name: "default", Unsettled: Unsettled{}},
		{Name: "bare single object", Unsettled: Unsettled{BareSingleObject: true}},
		{Name: "user update 204", Unsettled: Unsettled{UserUpdate204: true}},
		{Name: "empty update refused", Unsettled: Unsettled{RefuseEmptyUpdate: true}},
		{Name: "refused delete 409", Unsettled: Unsettled{RefusedDelete409: true}},
		{Name: "terse errors", Unsettled: Unsettled{TerseErrors: true}},
		{Name: "JSON by default", Unsettled: Unsettled{JSONByDefault: true}},
		{Name: "root parent null", Unsettled: Unsettled{RootParent: RootParentNull}},
		{Name: "root parent empty", Unsettled: Unsettled{RootParent: RootParentEmpty}},
		{Name: "root parent nil UUID", Unsettled: Unsettled{RootParent: RootParentNilUUID}},
		{Name: "root parent self", Unsettled: Unsettled{RootParent: RootParentSelf}},
		{Name: "return object ignored", Unsettled: Unsettled{ReturnObject: ReturnObjectIgnored}},
		{Name: "return object always", Unsettled: Unsettled{ReturnObject: ReturnObjectAlways}},
		{Name: "dates DD.MM.YYYY", Unsettled: Unsettled{DateFormat: DateDotted}},
		{Name: "dates as datetime", Unsettled: Unsettled{DateFormat: DateDateTime}},
		{Name: "sibling names refused 400", Unsettled: Unsettled{SiblingNames: Clash400}},
		{Name: "sibling names refused 409", Unsettled: Unsettled{SiblingNames: Clash409}},
		{Name: "password required", Unsettled: Unsettled{PasswordRequired: true}},
		{Name: "duplicate 400", Unsettled: Unsettled{Duplicate400: true}},
		{Name: "duplicate on update 409", Unsettled: Unsettled{UpdateDuplicate409: true}},
		{Name: "root subordination refused 400", Unsettled: Unsettled{RootSubordination: RootSub400}},
		{Name: "root subordination refused 403", Unsettled: Unsettled{RootSubordination: RootSub403}},
		{Name: "root subordination refused 409", Unsettled: Unsettled{RootSubordination: RootSub409}},
		{Name: "root subordination ignored", Unsettled: Unsettled{RootSubordination: RootSubIgnored}},
		{Name: "root links inherit", Unsettled: Unsettled{RootLinks: RootLinksInherit}},
		{Name: "root links absent", Unsettled: Unsettled{RootLinks: RootLinksAbsent}},
		{Name: "second role in userRoles", Unsettled: Unsettled{UserRoles: UserRolesSecond}},
		{Name: "supervisor role in role", Unsettled: Unsettled{SupervisorRole: SupervisorRoleInRole}},
		{Name: "supervisor role listed", Unsettled: Unsettled{SupervisorRole: SupervisorRoleListed}},
		{Name: "supervisor role with departments", Unsettled: Unsettled{SupervisorRole: SupervisorRoleScoped}},
		{Name: "supervisor role with departments, second role", Unsettled: Unsettled{SupervisorRole: SupervisorRoleScoped, UserRoles: UserRolesSecond}},
		{Name: "all flipped", Unsettled: Unsettled{BareSingleObject: true, UserUpdate204: true, RefuseEmptyUpdate: true, RefusedDelete409: true, TerseErrors: true,
			JSONByDefault: true, RootParent: RootParentSelf, ReturnObject: ReturnObjectAlways, DateFormat: DateDotted,
			SiblingNames: Clash400, PasswordRequired: true, RootSubordination: RootSubIgnored, RootLinks: RootLinksAbsent, UserRoles: UserRolesSecond, UpdateNeedsLogin: true,
			SupervisorRole: SupervisorRoleScoped, UnknownRef404: true, BulkUnknown: BulkUnknownPartial, LastPage: LastPageAfterFull, CodeFilter: CodeFilterContains, UniqueCodes: Clash409,
			MoveKey: MoveKeyMisspelt, ExactFilters: true, StrictRequests: true, Throttle: Throttle503, MaxPageSize: 10, LeaverLinks: LeaverLinksInherit,
			CaseSensitiveUnique: true, Codes: CodesRefusedChars, HeaderAuthRetired: true, TokenForm: TokenFormBearer, KeyRefusal: KeyRefused400Client,
			FieldsForm: FieldsListRefused, ReadDates: ReadDatesSpace, XMLErrors: true, OmittedLink: OmittedLinkReset, RoleNames: RoleNamesEU}},
		{Name: "all flipped, nil UUID root", Unsettled: Unsettled{BareSingleObject: true, UserUpdate204: true, RefusedDelete409: true,
			TerseErrors: true, JSONByDefault: true, RootParent: RootParentNilUUID, ReturnObject: ReturnObjectAlways,
			SiblingNames: Clash409, PasswordRequired: true, RootSubordination: RootSub403, RootLinks: RootLinksInherit, UnknownID400: true,
			SupervisorRole: SupervisorRoleInRole, BulkUnknown: BulkUnknownIgnored, UpdateDuplicate409: true, LastPage: LastPageNull, CodeFilter: CodeFilterIgnored, UniqueCodes: Clash400,
			MoveKey: MoveKeyCorrect, StrictRequests: true, Throttle: ThrottleNoHeader, LoginEmailByDefault: true, LeaverLinks: LeaverLinksNoSupervisor,
			Codes: CodesCut, TokenForm: TokenFormBare, KeyRefusal: KeyRefused403, FieldsForm: FieldsListIgnored, ReadDates: ReadDatesZulu,
			RoleNames: RoleNamesEU}},
		{Name: "long values cut", Unsettled: Unsettled{LongValues: LongValuesCut}},
		{Name: "long values refused", Unsettled: Unsettled{LongValues: LongValuesRefused}},
		{Name: "update needs login", Unsettled: Unsettled{UpdateNeedsLogin: true}},
		{Name: "unknown ID 400", Unsettled: Unsettled{UnknownID400: true}},
		{Name: "unknown department in a body 404", Unsettled: Unsettled{UnknownRef404: true}},
		{Name: "unknown users in a bulk call ignored", Unsettled: Unsettled{BulkUnknown: BulkUnknownIgnored}},
		{Name: "unknown users in a bulk call refused after the others", Unsettled: Unsettled{BulkUnknown: BulkUnknownPartial}},
		{Name: "last page empty token", Unsettled: Unsettled{LastPage: LastPageEmpty}},
		{Name: "last page null token", Unsettled: Unsettled{LastPage: LastPageNull}},
		{Name: "full last page has a token", Unsettled: Unsettled{LastPage: LastPageAfterFull}},
		{Name: "code filter contains", Unsettled: Unsettled{CodeFilter: CodeFilterContains}},
		{Name: "code filter ignored", Unsettled: Unsettled{CodeFilter: CodeFilterIgnored}},
		{Name: "unique codes 400", Unsettled: Unsettled{UniqueCodes: Clash400}},
		{Name: "unique codes 409", Unsettled: Unsettled{UniqueCodes: Clash409}},
		{Name: "move reads departmentIds", Unsettled: Unsettled{MoveKey: MoveKeyCorrect}},
		{Name: "move reads departmnetIds", Unsettled: Unsettled{MoveKey: MoveKeyMisspelt}},
		{Name: "exact filters", Unsettled: Unsettled{ExactFilters: true}},
		{Name: "logins and e-mails unique with letter case", Unsettled: Unsettled{CaseSensitiveUnique: true}},
		{Name: "empty refused, update needs login", Unsettled: Unsettled{RefuseEmptyUpdate: true, UpdateNeedsLogin: true}},
		{Name: "strict requests", Unsettled: Unsettled{StrictRequests: true}},
		{Name: "pages of at most 10", Unsettled: Unsettled{MaxPageSize: 10}},
		{Name: "login e-mail by default", Unsettled: Unsettled{LoginEmailByDefault: true}},
		{Name: "leavers' links become no_supervisor", Unsettled: Unsettled{LeaverLinks: LeaverLinksNoSupervisor}},
		{Name: "leavers' links become inherit", Unsettled: Unsettled{LeaverLinks: LeaverLinksInherit}},
		{Name: "header auth retired", Unsettled: Unsettled{HeaderAuthRetired: true}},
		{Name: "token Bearer only", Unsettled: Unsettled{TokenForm: TokenFormBearer}},
		{Name: "token bare only", Unsettled: Unsettled{TokenForm: TokenFormBare}},
		{Name: "header auth retired, token bare only", Unsettled: Unsettled{HeaderAuthRetired: true, TokenForm: TokenFormBare}},
		{Name: "key refused 401 invalid_client", Unsettled: Unsettled{KeyRefusal: KeyRefused401OAuth}},
		{Name: "key refused 400 invalid_client", Unsettled: Unsettled{KeyRefusal: KeyRefused400Client}},
		{Name: "key refused 400 invalid_grant", Unsettled: Unsettled{KeyRefusal: KeyRefused400Grant}},
		{Name: "key refused 400 unauthorized_client", Unsettled: Unsettled{KeyRefusal: KeyRefused400Unauthorized}},
		{Name: "key refused 403", Unsettled: Unsettled{KeyRefusal: KeyRefused403}},
		// No sample shows an administrator's or the owner's profile: its
		// role keys may be missing or empty.
		{Name: "no role in reads", Unsettled: Unsettled{NoRoleReads: true}},
		{Name: "empty roles in reads", Unsettled: Unsettled{EmptyUserRoles: true}},
		// The docs say only that the owner cannot be deactivated, not how.
		{Name: "owner's deactivation refused 403", Unsettled: Unsettled{RefusedDelete403: true}},
		// No source says whether a mere supervisor's credentials reach the API.
		{Name: "supervisors read", Unsettled: Unsettled{SupervisorReads: true}},
		{Name: "no role in reads, owner refused 403", Unsettled: Unsettled{NoRoleReads: true, RefusedDelete403: true, SupervisorReads: true}},
		// No source says whether a user write takes fields as a {name, value} list too.
		{Name: "fields list refused", Unsettled: Unsettled{FieldsForm: FieldsListRefused}},
		{Name: "fields list ignored", Unsettled: Unsettled{FieldsForm: FieldsListIgnored}},
		// The API description gives a read's dates only as "datetime".
		{Name: "read dates with Z", Unsettled: Unsettled{ReadDates: ReadDatesZulu}},
		{Name: "read dates with a space", Unsettled: Unsettled{ReadDates: ReadDatesSpace}},
		{Name: "errors in XML", Unsettled: Unsettled{XMLErrors: true}},
		// The API description makes each link of a subordination request
		// optional and says nothing of the one left out.
		{Name: "omitted link reset", Unsettled: Unsettled{OmittedLink: OmittedLinkReset}},
		// Learn's role lists conflict; reads may use the EU docs' names.
		{Name: "roles read in the EU docs' names", Unsettled: Unsettled{RoleNames: RoleNamesEU}},
		{Name: "roles read in the EU docs' names, second role in userRoles", Unsettled: Unsettled{RoleNames: RoleNamesEU, UserRoles: UserRolesSecond}},
	}
}

// NeedsAPIKey reports whether a client shows the choices of u only with an
// API key (Client ID and Secret): header auth is retired, or the token's
// form is one of the choices, or how a refused key is answered. Tests that run every Variant give the account
// and the client a key then.
func (u Unsettled) NeedsAPIKey() bool {
	return u.HeaderAuthRetired || u.TokenForm != TokenFormEither || u.KeyRefusal != KeyRefused401
}
