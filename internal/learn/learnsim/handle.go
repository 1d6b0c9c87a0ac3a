package learnsim

import (
	"encoding/xml"
	"net/http"
)

// answer writes a successful reply; a step returns it so it is written after
// the account's lock is released.
type answer func(w http.ResponseWriter, r *http.Request)

// step is the body of one API route: it runs under the account's lock with
// the decoded request body and returns the reply or the refusal.
type step func(r *http.Request, a *account, body map[string]any) (answer, *apiErr)

// decoder reads a route's request body.
type decoder func(r *http.Request) (map[string]any, *apiErr)

// noBody is the decoder of routes that take no body (a DELETE's body is not read).
func noBody(*http.Request) (map[string]any, *apiErr) { return nil, nil }

// bodyOnPost reads the body of a POST only: the user search takes its filters
// either way.
func bodyOnPost(r *http.Request) (map[string]any, *apiErr) {
	if r.Method != http.MethodPost {
		return nil, nil
	}
	return readBody(r)
}

// mutate is the skeleton of a route that changes the account: decode the
// body, run the step under the write lock, then write the refusal or the reply.
func mutate(decode decoder, f step) http.HandlerFunc { return run(decode, f, true) }

// inspect is mutate for the read routes: the step runs under the read lock.
func inspect(decode decoder, f step) http.HandlerFunc { return run(decode, f, false) }

func run(decode decoder, f step, exclusive bool) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a := acctFrom(r)
		strict := unsettledFrom(r).StrictRequests
		if strict {
			if err := strictWire(r); err != nil {
				a.strays.add(r, err)
				writeErr(w, r, err)
				return
			}
		}
		body, err := decode(r)
		if err != nil {
			writeErr(w, r, err)
			return
		}
		lock, unlock := a.mu.RLock, a.mu.RUnlock
		if exclusive {
			lock, unlock = a.mu.Lock, a.mu.Unlock
		}
		lock()
		var reply answer
		if strict {
			if err = strictBody(r, a, body); err != nil {
				a.strays.add(r, err)
			}
		}
		if err == nil && exclusive {
			err = a.permits(r, body)
		} else if err == nil {
			err = a.deniedRead(r)
		}
		if err == nil {
			reply, err = f(r, a, body)
		}
		unlock()
		err = unsettledFrom(r).notFound(r.Pattern, err)
		if err != nil {
			writeErr(w, r, err)
			return
		}
		reply(w, r)
	}
}

func noContent(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }

// ok answers 200 with an empty body (user update and status, per the OAS).
func ok(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusOK) }

// found answers 200 with v as JSON, or xmlV as XML.
func found(v, xmlV any) answer {
	return func(w http.ResponseWriter, r *http.Request) { write(w, r, http.StatusOK, v, xmlV) }
}

// one answers a single-object read of out, an object in department dept:
// refused when the caller does not see dept, else enveloped or bare (single).
func one[T any](r *http.Request, a *account, dept string, out T) (answer, *apiErr) {
	if !a.seesAll(r)(dept) {
		return nil, errf(http.StatusForbidden, "Permission denied")
	}
	return found(single(r, out), response(out)), nil
}

// created answers a create: the new object v when the request asks for it
// (see returnObject), else its ID.
func created[T any](id string, v T) answer {
	return func(w http.ResponseWriter, r *http.Request) {
		if returnObject(r) {
			write(w, r, http.StatusCreated, v, response(v))
			return
		}
		writeCreated(w, r, id)
	}
}

// logSent records an update or move for Sim.Sent with the status it is
// answered with: status, or the refusal's.
func (a *account) logSent(r *http.Request, body map[string]any, fields map[string]string, userIDs []string, status int, err *apiErr) {
	if err != nil {
		status = err.status
	}
	a.sent.add(Sent{Route: r.Pattern, ID: r.PathValue("id"), Keys: bodyKeys(body, fields), UserIDs: userIDs, Status: status})
}

// page answers a page of a listing: the items under key (in XML, inside a
// key element), and the token of the page starting at next (see nextToken).
func page[T any](r *http.Request, key string, items []T, next string) answer {
	tok := nextToken(r, next)
	body := map[string]any{key: items}
	if tok.Present {
		body["nextPageToken"] = tok
	}
	return found(body, xmlPage[T]{Items: xmlItems[T]{XMLName: xml.Name{Local: key}, Items: items}, NextPageToken: tok})
}
