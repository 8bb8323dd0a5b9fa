package keystone

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// maxBody bounds a request body here, whatever the server in front allows.
const maxBody = 64 << 10

// obj decodes one JSON object field by field, so each error names the field (by its path, e.g.
// auth.identity.password.user.name) and the value it got. Every accessor marks its field as known;
// done reports the unknown ones.
type obj struct {
	path string
	m    map[string]json.RawMessage
	seen map[string]bool
}

// readBody reads a request body of at most maxBody bytes.
func readBody(w http.ResponseWriter, r *http.Request) ([]byte, error) {
	return io.ReadAll(http.MaxBytesReader(w, r.Body, maxBody))
}

// parseEnvelope parses {"<resource>": {...}} and returns the inner object.
func parseEnvelope(b []byte, resource string) (*obj, error) {
	if len(bytes.TrimSpace(b)) == 0 {
		return nil, errf(http.StatusBadRequest, "The request body is empty; expected {\"%s\": {...}}.", resource)
	}
	var env map[string]json.RawMessage
	if err := json.Unmarshal(b, &env); err != nil || env == nil {
		return nil, errf(http.StatusBadRequest, "The request body is not a JSON object like {\"%s\": {...}}: %s", resource, jsonErr(err, b))
	}
	if _, ok := env[resource]; !ok || len(env) != 1 {
		return nil, errf(http.StatusBadRequest, "The request body must hold exactly one key %q, got %s.", resource, quoteKeys(env))
	}
	return parseObject(env[resource], resource)
}

func parseObject(raw json.RawMessage, path string) (*obj, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, invalid(path, "%s is not an object.", clip(raw))
	}
	return &obj{path: path, m: m, seen: map[string]bool{}}, nil
}

func jsonErr(err error, b []byte) string {
	if err == nil {
		return "got null"
	}
	if se, ok := err.(*json.SyntaxError); ok {
		return "invalid JSON at byte " + strconv.FormatInt(se.Offset, 10) + ": " + se.Error()
	}
	if _, ok := err.(*json.UnmarshalTypeError); ok {
		return "got " + clip(b)
	}
	return err.Error()
}

func quoteKeys(m map[string]json.RawMessage) string {
	if len(m) == 0 {
		return "none"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, strconv.Quote(k))
	}
	sort.Strings(keys)
	return strings.Join(keys, ", ")
}

// clip shortens a raw value for an error message.
func clip(raw []byte) string {
	s := string(bytes.TrimSpace(raw))
	if len(s) > 64 {
		cut := 64
		for cut > 0 && !utf8.RuneStart(s[cut]) {
			cut--
		}
		s = s[:cut] + "..."
	}
	return s
}

func (o *obj) field(k string) string { return o.path + "." + k }

func (o *obj) raw(k string) (json.RawMessage, bool) {
	o.seen[k] = true
	v, ok := o.m[k]
	return v, ok
}

func isNull(raw json.RawMessage) bool { return string(bytes.TrimSpace(raw)) == "null" }

// str reads an optional string of 1..max characters. Null reads as "" when nullable.
func (o *obj) str(k string, max int, nullable bool) (string, bool, error) {
	raw, ok := o.raw(k)
	if !ok {
		return "", false, nil
	}
	if isNull(raw) {
		if nullable {
			return "", true, nil
		}
		return "", false, invalid(o.field(k), "null is not a string.")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, invalid(o.field(k), "%s is not a string.", clip(raw))
	}
	if n := utf8.RuneCountInString(s); n > max {
		return "", false, invalid(o.field(k), "%q is %d characters long; the limit is %d.", clip([]byte(s)), n, max)
	}
	return s, true, nil
}

// name reads an optional non-empty name of at most max characters.
func (o *obj) name(k string, max int) (string, bool, error) {
	s, ok, err := o.str(k, max, false)
	if err == nil && ok && strings.TrimSpace(s) == "" {
		return "", false, invalid(o.field(k), "%q is empty; a name needs at least one visible character.", s)
	}
	return s, ok, err
}

// secret reads an optional password (bcrypt's 72 bytes at most). Its value never appears in an
// error.
func (o *obj) secret(k string, nullable bool) (string, bool, error) {
	return o.secretN(k, maxPasswordBytes, nullable)
}

// secretN reads an optional secret of at most max bytes, never quoting it in an error.
func (o *obj) secretN(k string, max int, nullable bool) (string, bool, error) {
	raw, ok := o.raw(k)
	if !ok {
		return "", false, nil
	}
	if isNull(raw) {
		if nullable {
			return "", true, nil
		}
		return "", false, invalid(o.field(k), "the value is null; want a string.")
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return "", false, invalid(o.field(k), "the value is not a string.")
	}
	if len(s) > max {
		return "", false, invalid(o.field(k), "the value is %d bytes long; the limit is %d bytes.", len(s), max)
	}
	return s, true, nil
}

func (o *obj) boolean(k string) (bool, bool, error) {
	raw, ok := o.raw(k)
	if !ok {
		return false, false, nil
	}
	var b bool
	if isNull(raw) || json.Unmarshal(raw, &b) != nil {
		return false, false, invalid(o.field(k), "%s is not a boolean (true or false).", clip(raw))
	}
	return b, true, nil
}

func (o *obj) strList(k string, max int) ([]string, bool, error) {
	raw, ok := o.raw(k)
	if !ok {
		return nil, false, nil
	}
	var l []string
	if isNull(raw) || json.Unmarshal(raw, &l) != nil {
		return nil, false, invalid(o.field(k), "%s is not a list of strings.", clip(raw))
	}
	for _, s := range l {
		if s == "" || utf8.RuneCountInString(s) > max {
			return nil, false, invalid(o.field(k), "%q must have 1 to %d characters.", clip([]byte(s)), max)
		}
	}
	return l, true, nil
}

func (o *obj) object(k string) (*obj, bool, error) {
	raw, ok := o.raw(k)
	if !ok {
		return nil, false, nil
	}
	c, err := parseObject(raw, o.field(k))
	return c, err == nil, err
}

// ignoreObject accepts an optional object (or null) whose content is not used, e.g. "options".
func (o *obj) ignoreObject(k string) error {
	raw, ok := o.raw(k)
	if !ok || isNull(raw) {
		return nil
	}
	_, err := parseObject(raw, o.field(k))
	return err
}

// done fails when the object holds a key no accessor asked for.
func (o *obj) done() error {
	var unknown []string
	for k := range o.m {
		if !o.seen[k] {
			unknown = append(unknown, strconv.Quote(k))
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	sort.Strings(unknown)
	known := make([]string, 0, len(o.seen))
	for k := range o.seen {
		known = append(known, k)
	}
	sort.Strings(known)
	return invalid(o.path, "unknown attribute %s; allowed: %s.", strings.Join(unknown, ", "), strings.Join(known, ", "))
}

// extras returns the attributes no accessor asked for, decoded: Keystone keeps them on users,
// projects, domains, roles and groups and returns them as given. "links" is read-only and
// dropped. At most 32 extras of at most 4 KiB each are kept.
func (o *obj) extras() (map[string]any, error) {
	var out map[string]any
	keys := make([]string, 0, len(o.m))
	for k := range o.m {
		if !o.seen[k] && k != "links" {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	if len(keys) > 32 {
		return nil, invalid(o.path, "%d extra attributes (%s, ...); the limit is 32.", len(keys), strings.Join(keys[:3], ", "))
	}
	for _, k := range keys {
		raw := o.m[k]
		if len(raw) > 4096 {
			return nil, invalid(o.field(k), "the value is %d bytes long; the limit for an extra attribute is 4096.", len(raw))
		}
		var v any
		if err := json.Unmarshal(raw, &v); err != nil {
			return nil, invalid(o.field(k), "%s is not JSON.", clip(raw))
		}
		if out == nil {
			out = map[string]any{}
		}
		out[k] = v
	}
	return out, nil
}
