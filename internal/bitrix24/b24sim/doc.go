// Package b24sim simulates Bitrix24 for tests, benchmarks and the demo: the
// OAuth server and any number of portals, faithful to docs/bitrix24-api.md;
// the sample traffic in internal/bitrix24/testdata is its spec (golden_test.go).
// It shares no code with the client (imports_test.go): requests are read with
// its own PHP form decoder and answers written from its own JSON shapes.
//
// Starting it:
//
//	srv := b24sim.Start(b24sim.Options{AppURL: appURL}) // OAuth server at srv.URL (B24_OAUTH_URL)
//	defer srv.Close()
//	p := srv.AddPortal(b24sim.PortalOptions{Org: b24sim.GenerateOrg(1, 500, 40)})
//
// Under Start every portal gets its own loopback listener, so its DOMAIN is
// its real host:port and client_endpoint is http://DOMAIN/rest/, as on
// Bitrix24. A portal added with a logical Domain ("acme.bitrix24.com") is
// served by path instead: REST at <base>/p/<domain>/rest/, page at
// <base>/portal/<domain>/. New + SetBaseURL serve the same handler anywhere.
//
// The app's life cycle, as an admin drives it on a real portal:
//
//	tok := p.Install()            // Market install: application_token, tokens; state "installing"
//	p.Open(ctx, hc, p.AdminID())  // iframe POST to AppURL/b24/install (or /b24/app once installed)
//	p.FinishInstall(ctx)          // BX24.installFinish(): INSTALLED, ONAPPINSTALL to bound handlers
//	p.Update(ctx)                 // new version: new application_token, ONAPPUPDATE, bindings dropped
//	p.Uninstall(ctx, true)        // ONAPPUNINSTALL with data[CLEAN]=1; tokens die (APPLICATION_NOT_FOUND)
//
// How the dead installation's tokens are refused is a per-portal choice
// (PortalOptions.AfterUninstall, Portal.SetAfterUninstall), since Bitrix24
// does not document it: APPLICATION_NOT_FOUND, invalid_token or expired_token
// with a refused refresh (invalid_grant or PAYMENT_REQUIRED), a 404 portal, or
// app.info answering INSTALLED false.
//
// Every other behaviour no source settles has a switch in Options.Unsettled
// (or Sim.SetUnsettled on a running simulator): the refresh answer's domain
// and scope, the auth errors' texts, PAYMENT_REQUIRED's status, a second
// event.bind, an extranet user's empty UF_DEPARTMENT, the OAuth server's
// app.info, ONUSERADD's data[ACTIVE] (Portal.UserAdded), the idle life of a
// refresh token (with Now and Sim.Advance), a start=-1 page's total, IDs as
// numbers, the frame POST's PLACEMENT_OPTIONS, ONAPPINSTALL as the docs'
// sample, a plain ID filter with a list, time blocks without the operating
// keys, how a row shows a value it has none of, ONAPPINSTALL with the
// installer's own token pair, ONAPPINSTALL before the installer page.
// Variants lists the choices a client must pass. PortalOptions.TimeZone writes a portal's dates with its offset.
//
// FrameRequest returns the iframe POST fields without sending them; Tokens
// issues a token chain for any user. The portal page (PageURL) does the same in
// a browser: an auto-submitted form targeting an iframe named
// "DOMAIN|PROTOCOL|APP_SID", buttons to install, uninstall (with or without
// CLEAN) and open the app as a non-admin; a postMessage naming installFinish
// from the frame finishes the install.
//
// REST methods: profile, user.admin, app.info, department.get, user.get
// (FILTER with >ID and other prefixes, ACTIVE, USER_TYPE, UF_DEPARTMENT;
// SORT/ORDER; start paging with total/next; start=-1 without count;
// ADMIN_MODE), batch (≤50 commands, body order, $result[…] references, halt,
// result_error), event.bind/unbind/get, and crm.lead.add on the inbound
// webhook …/rest/1/<WebhookCode>/ (Leads). The OAuth server answers
// /oauth/token/?grant_type=refresh_token (rotation: reusing a refresh token, or
// refreshing after uninstall, gives invalid_grant) and app.info at /rest/.
//
// Knobs for tests: Options.Rate/Burst (leaky bucket, 503 QUERY_LIMIT_EXCEEDED),
// Latency, Now and Sim.Advance (token clock), Portal.InjectFault,
// Sim.InjectOAuth (the OAuth server failing: error pages, resets, slow
// answers), SetRateLimit, FillBucket, ExpireTokens, Rename (the old address answers 302),
// and counters (Requests, TotalRequests, Commands, Throttled, Sim.Refreshes,
// Deliveries, Bindings). Org mutations: AddUser, FireUser, RehireUser,
// MoveUser, UpdateUser, AddDepartment, RenameDepartment, MoveDepartment,
// SetHead. GenerateOrg builds realistic orgs of any size.
package b24sim
