package neutron

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// maxStr is Neutron's limit on names and descriptions.
const maxStr = 255

// attrs decodes one resource's attributes field by field, so each error names the field and the
// value it got. Every accessor marks its field as known; rest() reports the unknown ones.
type attrs struct {
	resource string
	m        map[string]json.RawMessage
	seen     map[string]bool
}

// decodeBody reads {"<resource>": {...}} and returns the inner attributes.
func decodeBody(r io.Reader, resource string) (*attrs, error) {
	b, err := io.ReadAll(r)
	if err != nil {
		return nil, err
	}
	return parseBody(b, resource)
}

func parseBody(b []byte, resource string) (*attrs, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, badRequest("The request body is empty; expected {\"%s\": {...}}.", resource)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil {
		return nil, badRequest("Malformed request body: %s", jsonErr(err))
	}
	return fromEnvelope(env, resource)
}

// fromEnvelope reads the one object of a decoded {"<resource>": {...}} body.
func fromEnvelope(env map[string]json.RawMessage, resource string) (*attrs, error) {
	inner, ok := env[resource]
	if !ok || len(env) != 1 {
		keys := make([]string, 0, len(env))
		for k := range env {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		return nil, badRequest("Resource body required: expected one key %q, got %s.", resource, quoteList(keys))
	}
	a := &attrs{resource: resource, seen: map[string]bool{}}
	if err := json.Unmarshal(inner, &a.m); err != nil || a.m == nil {
		return nil, badRequest("Malformed request body: %q must be an object, got %s.", resource, clip(string(inner)))
	}
	return a, nil
}

func jsonErr(err error) string {
	var se *json.SyntaxError
	if ok := asSyntax(err, &se); ok {
		return fmt.Sprintf("invalid JSON at byte %d: %s", se.Offset, se.Error())
	}
	return err.Error()
}

func asSyntax(err error, target **json.SyntaxError) bool {
	se, ok := err.(*json.SyntaxError)
	if ok {
		*target = se
	}
	return ok
}

func quoteList(ss []string) string {
	if len(ss) == 0 {
		return "none"
	}
	q := make([]string, len(ss))
	for i, s := range ss {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// clip shortens a raw value for an error message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:77] + "..."
	}
	return s
}

func (a *attrs) has(k string) bool {
	a.seen[k] = true
	_, ok := a.m[k]
	return ok
}

func (a *attrs) isNull(k string) bool {
	v, ok := a.m[k]
	return ok && string(bytes.TrimSpace(v)) == "null"
}

func (a *attrs) invalid(k, want string) *Error {
	return invalidInput("Invalid input for %s. Reason: %s is not %s.", k, clip(string(a.m[k])), want)
}

// str returns a string attribute of at most max bytes.
func (a *attrs) str(k string, max int) (string, bool, error) {
	if !a.has(k) {
		return "", false, nil
	}
	var s string
	if err := json.Unmarshal(a.m[k], &s); err != nil {
		return "", true, a.invalid(k, "a string")
	}
	if max > 0 && len(s) > max {
		return "", true, invalidInput("Invalid input for %s. Reason: '%s' exceeds maximum length of %d.", k, clip(s), max)
	}
	return s, true, nil
}

// boolean accepts true/false and, as Neutron does, the strings "true"/"false" (any case).
func (a *attrs) boolean(k string) (bool, bool, error) {
	if !a.has(k) {
		return false, false, nil
	}
	var b bool
	if err := json.Unmarshal(a.m[k], &b); err == nil {
		return b, true, nil
	}
	var s string
	if err := json.Unmarshal(a.m[k], &s); err == nil {
		switch strings.ToLower(s) {
		case "true", "1":
			return true, true, nil
		case "false", "0":
			return false, true, nil
		}
	}
	return false, true, a.invalid(k, "a valid boolean value (true or false)")
}

// integer accepts a JSON integer or a string holding one ("15", as the openstack CLI sends).
// null gives ok with isNull reported by the caller through a.isNull.
func (a *attrs) integer(k string) (int, bool, error) {
	if !a.has(k) {
		return 0, false, nil
	}
	raw := bytes.TrimSpace(a.m[k])
	var n json.Number
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return 0, true, a.invalid(k, "an integer")
	}
	switch t := v.(type) {
	case json.Number:
		n = t
	case string:
		n = json.Number(strings.TrimSpace(t))
	default:
		return 0, true, a.invalid(k, "an integer")
	}
	i, err := strconv.ParseInt(string(n), 10, 32)
	if err != nil {
		return 0, true, a.invalid(k, "an integer")
	}
	return int(i), true, nil
}

// object returns a JSON object attribute (null → empty object).
func (a *attrs) object(k string) (map[string]any, bool, error) {
	if !a.has(k) {
		return nil, false, nil
	}
	if a.isNull(k) {
		return map[string]any{}, true, nil
	}
	var m map[string]any
	if err := json.Unmarshal(a.m[k], &m); err != nil || m == nil {
		return nil, true, a.invalid(k, "a dictionary")
	}
	return m, true, nil
}

// decode unmarshals a structured attribute into v.
func (a *attrs) decode(k string, v any, want string) (bool, error) {
	if !a.has(k) {
		return false, nil
	}
	if err := json.Unmarshal(a.m[k], v); err != nil {
		return true, a.invalid(k, want)
	}
	return true, nil
}

// oneOf returns a string attribute that must be one of allowed.
func (a *attrs) oneOf(k string, allowed []string) (string, bool, error) {
	s, ok, err := a.str(k, maxStr)
	if err != nil || !ok {
		return s, ok, err
	}
	if !slices.Contains(allowed, s) {
		return "", true, invalidInput("Invalid input for %s. Reason: %s is not in valid_values %v.", k, s, allowed)
	}
	return s, true, nil
}

// readOnly rejects attributes a client may not set in this request.
func (a *attrs) readOnly(op string, keys ...string) error {
	for _, k := range keys {
		if a.has(k) {
			return badRequest("Attribute '%s' not allowed in %s", k, op)
		}
	}
	return nil
}

// rest rejects any attribute no accessor asked for.
func (a *attrs) rest() error {
	var unknown []string
	for k := range a.m {
		if !a.seen[k] {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	return badRequest("Unrecognized attribute(s) '%s' for %s", strings.Join(unknown, ", "), a.resource)
}

// project returns the owner a create body names through tenant_id and/or project_id.
func (a *attrs) project() (string, bool, error) {
	t, tok, err := a.str("tenant_id", maxStr)
	if err != nil {
		return "", false, err
	}
	p, pok, err := a.str("project_id", maxStr)
	if err != nil {
		return "", false, err
	}
	switch {
	case tok && pok && t != p:
		return "", false, invalidInput("'tenant_id' (%s) and 'project_id' (%s) must be the same when both are given.", t, p)
	case pok:
		return p, true, nil
	case tok:
		return t, true, nil
	}
	return "", false, nil
}
