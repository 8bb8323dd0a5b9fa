package neutron

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"sort"

	"github.com/vflink/vflink/internal/store"
)

// MaxBulk is the most objects one native bulk create may hold. A bulk create is one etcd
// transaction (all of them or none), so it must fit etcd's --max-txn-ops and
// --max-request-bytes; the embedded member's limits (store.EmbeddedMaxTxnOps,
// store.EmbeddedMaxRequestBytes) hold this many ports.
const MaxBulk = 1000

// parseBulk reads a create body: {"<singular>": {...}} is one object (bulk=false), and
// {"<plural>": [{...}, ...]} a native bulk create, as in Neutron.
func parseBulk(b []byte, singular, plural string) (items []*attrs, bulk bool, err error) {
	var env map[string]json.RawMessage
	if len(bytes.TrimSpace(b)) == 0 || json.Unmarshal(b, &env) != nil {
		_, err := parseBody(b, singular) // its error says what is wrong
		return nil, false, err
	}
	if len(env) != 1 || env[plural] == nil {
		a, err := fromEnvelope(env, singular)
		if err != nil {
			return nil, false, err
		}
		return []*attrs{a}, false, nil
	}
	var list []json.RawMessage
	if err := json.Unmarshal(env[plural], &list); err != nil {
		return nil, true, badRequest("Malformed request body: %q must be a list of objects, got %s.", plural, clip(string(env[plural])))
	}
	if len(list) == 0 {
		return nil, true, badRequest("Resources required: %q is an empty list.", plural)
	}
	if len(list) > MaxBulk {
		return nil, true, badRequest("A bulk create of %d %s is more than the %d one request may hold; send several requests.", len(list), plural, MaxBulk)
	}
	items = make([]*attrs, len(list))
	for i, raw := range list {
		a, err := fromEnvelope(map[string]json.RawMessage{singular: raw}, singular)
		if err != nil {
			return nil, true, bulkErr(err, i, len(list))
		}
		items[i] = a
	}
	return items, true, nil
}

// bulkErr names the item of a bulk request an error is about (nothing for a single object).
func bulkErr(err error, i, n int) error {
	var e *Error
	if n <= 1 || !errors.As(err, &e) {
		return err
	}
	return &Error{Status: e.Status, Type: e.Type, Message: fmt.Sprintf("%s (item %d of %d; nothing was created)", e.Message, i+1, n)}
}

// txnSizeErr explains a transaction etcd refused for its size.
func txnSizeErr(err error, n int, plural string) error {
	var te *store.TooLargeError
	if !errors.As(err, &te) {
		return err
	}
	return errf(http.StatusBadRequest, "HTTPBadRequest",
		"A bulk create of %d %s is one transaction of %d compares and %d writes, more than the etcd cluster allows (its --max-txn-ops or --max-request-bytes); send fewer per request. Nothing was created.",
		n, plural, te.Compares, te.Ops)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
