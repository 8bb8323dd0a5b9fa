package keystone

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"sort"
	"strings"
)

// Credentials (/v3/credentials), policies (/v3/policies) and OAuth1 consumers
// (/v3/OS-OAUTH1/consumers), as Keystone stores them. A credential's blob is the owner's data and
// is returned to the owner and admins, as Keystone does; an OAuth consumer's secret is shown once,
// in the create answer, and only its SHA-256 is kept.

func (s *Service) credentialSpec() *docSpec {
	sp := &docSpec{member: "credential", collection: "credentials", path: "credentials", prefix: "keystone/credentials/",
		filters: []string{"user_id", "type"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		for _, k := range []string{"blob", "project_id", "type", "user_id"} {
			if err := docString(in, "credential", k, 0, false); err != nil {
				return nil, err
			}
		}
		d := merge(old, in)
		if old == nil {
			if err := docRequire(in, "credential", "blob", "type", "user_id"); err != nil {
				return nil, err
			}
		}
		if _, err := s.getUser(ctx, str(d, "user_id")); isNotFound(err) {
			return nil, invalid("credential.user_id", "user %q does not exist.", str(d, "user_id"))
		} else if err != nil {
			return nil, err
		}
		if pid := str(d, "project_id"); pid != "" {
			if _, err := s.getProject(ctx, pid); isNotFound(err) {
				return nil, invalid("credential.project_id", "project %q does not exist.", pid)
			} else if err != nil {
				return nil, err
			}
		}
		if strings.EqualFold(str(d, "type"), "ec2") {
			if str(d, "project_id") == "" {
				return nil, invalid("credential", "'project_id' is a required property for an ec2 credential.")
			}
			var blob map[string]any
			if json.Unmarshal([]byte(str(d, "blob")), &blob) != nil || blob == nil {
				return nil, invalid("credential.blob", "an ec2 credential's blob must be a JSON object with an \"access\" key.")
			}
			access, ok := blob["access"].(string)
			if !ok {
				return nil, invalid("credential.blob", "an ec2 credential's blob must have a string \"access\".")
			}
			sum := sha256.Sum256([]byte(access))
			id := hex.EncodeToString(sum[:])
			if old == nil {
				d["id"] = id // Keystone's ID of an ec2 credential
			} else if id != str(old, "id") && strings.EqualFold(str(old, "type"), "ec2") {
				// Keystone keeps the ID; the access key may change
			}
		}
		if _, ok := d["project_id"]; !ok {
			d["project_id"] = nil
		}
		return d, nil
	}
	return sp
}

// listCredentials filters the list to the caller's own credentials unless it is an admin.
func (s *Service) listCredentials(w http.ResponseWriter, r *http.Request) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	sp := s.credentialSpec()
	l, err := s.listDocs(r.Context(), sp)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	out := make([]doc, 0, len(l))
	for _, d := range l {
		if (!c.IsAdmin() && str(d, "user_id") != c.UserID) ||
			(q.Has("user_id") && str(d, "user_id") != q.Get("user_id")) || (q.Has("type") && str(d, "type") != q.Get("type")) {
			continue
		}
		out = append(out, s.docView(sp, d))
	}
	sort.Slice(out, func(i, j int) bool { return str(out[i], "id") < str(out[j], "id") })
	writeJSON(w, http.StatusOK, map[string]any{"credentials": out, "links": s.listLinks(r, "credentials")})
	return nil
}

func (s *Service) policySpec() *docSpec {
	sp := &docSpec{member: "policy", collection: "policies", path: "policies", prefix: "keystone/policies/",
		filters: []string{"type"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		if old == nil {
			if err := docRequire(in, "policy", "blob", "type"); err != nil {
				return nil, err
			}
		}
		if err := docString(in, "policy", "blob", 0, false); err != nil {
			return nil, err
		}
		if err := docString(in, "policy", "type", 255, false); err != nil {
			return nil, err
		}
		return merge(old, in), nil
	}
	return sp
}

func (s *Service) consumerSpec() *docSpec {
	sp := &docSpec{member: "consumer", collection: "consumers", path: "OS-OAUTH1/consumers", prefix: "keystone/consumers/",
		hide: []string{"secret_sha256"}}
	sp.prepare = func(ctx context.Context, in, old doc) (doc, error) {
		if err := docString(in, "consumer", "description", 255, true); err != nil {
			return nil, err
		}
		for _, k := range []string{"secret", "secret_sha256", "id"} {
			if _, ok := in[k]; ok && (old != nil || k != "id") {
				return nil, invalid("consumer."+k, "the %s of a consumer cannot be given.", k)
			}
		}
		d := merge(old, in)
		if d["description"] == nil {
			d["description"] = ""
		}
		return d, nil
	}
	return sp
}

// createConsumer is POST /v3/OS-OAUTH1/consumers: the answer carries the new secret, once.
func (s *Service) createConsumer(w http.ResponseWriter, r *http.Request) error {
	if _, err := requireAdmin(r, "create_consumer"); err != nil {
		return err
	}
	b, err := readBody(w, r)
	if err != nil {
		return err
	}
	sp := s.consumerSpec()
	in, err := parseDoc(b, sp.member)
	if err != nil {
		return err
	}
	ctx := r.Context()
	d, err := sp.prepare(ctx, in, nil)
	if err != nil {
		return err
	}
	raw := make([]byte, 24)
	rand.Read(raw)
	secret := base64.RawURLEncoding.EncodeToString(raw)
	sum := sha256.Sum256([]byte(secret))
	d["id"] = newID()
	d["secret_sha256"] = hex.EncodeToString(sum[:])
	t := s.st.Txn()
	t.Create(sp.key(str(d, "id")), d)
	if _, err := t.Commit(ctx); err != nil {
		return err
	}
	s.log.Info("consumer created", "consumer", d["id"])
	v := s.docView(sp, d)
	v["secret"] = secret
	writeJSON(w, http.StatusCreated, map[string]any{"consumer": v})
	return nil
}

func (s *Service) registerCredentials(h func(string, func(http.ResponseWriter, *http.Request) error)) {
	cred := s.credentialSpec()
	h("GET /v3/credentials", s.listCredentials)
	h("POST /v3/credentials", func(w http.ResponseWriter, r *http.Request) error { return s.createDoc(w, r, cred) })
	h("GET /v3/credentials/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.ownDoc(w, r, cred, s.showDoc) })
	h("PATCH /v3/credentials/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.updateDoc(w, r, cred) })
	h("DELETE /v3/credentials/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.deleteDoc(w, r, cred) })
	s.registerDocs(h, s.policySpec())
	con := s.consumerSpec()
	h("POST /v3/OS-OAUTH1/consumers", s.createConsumer)
	h("GET /v3/OS-OAUTH1/consumers", func(w http.ResponseWriter, r *http.Request) error { return s.listDocsHandler(w, r, con) })
	h("GET /v3/OS-OAUTH1/consumers/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.showDoc(w, r, con) })
	h("PATCH /v3/OS-OAUTH1/consumers/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.updateDoc(w, r, con) })
	h("DELETE /v3/OS-OAUTH1/consumers/{id}", func(w http.ResponseWriter, r *http.Request) error { return s.deleteDoc(w, r, con) })
}

// ownDoc lets a user read its own credential; others go through next (admin only).
func (s *Service) ownDoc(w http.ResponseWriter, r *http.Request, sp *docSpec, next func(http.ResponseWriter, *http.Request, *docSpec) error) error {
	c, err := caller(r)
	if err != nil {
		return err
	}
	if !c.IsAdmin() {
		o, err := s.getDoc(r.Context(), sp, r.PathValue("id"))
		if err != nil || str(o.Value, "user_id") != c.UserID {
			return forbidden("get_" + sp.member)
		}
		writeJSON(w, http.StatusOK, map[string]any{sp.member: s.docView(sp, o.Value)})
		return nil
	}
	return next(w, r, sp)
}
