package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// Credentials are a Keystone v3 password login scoped to a project (domain Default unless set).
type Credentials struct {
	AuthURL  string // e.g. http://127.0.0.1:9696/v3
	Username string
	Password string
	Project  string
	Domain   string
}

// WithLogin makes the client log in with creds on first use and again after a 401 (an expired or
// revoked token), instead of a fixed token.
func WithLogin(creds Credentials) Option {
	if creds.Domain == "" {
		creds.Domain = "Default"
	}
	return func(c *Client) { c.login = &login{creds: creds} }
}

type login struct {
	creds Credentials
	mu    sync.Mutex
	cur   string
}

func (l *login) forget(tok string) {
	l.mu.Lock()
	if l.cur == tok {
		l.cur = ""
	}
	l.mu.Unlock()
}

func (l *login) token(ctx context.Context, c *Client) (string, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.cur != "" {
		return l.cur, nil
	}
	tok, err := Login(ctx, c.hc, l.creds)
	if err != nil {
		return "", err
	}
	l.cur = tok
	return tok, nil
}

// Login does a Keystone v3 password login and returns the token.
func Login(ctx context.Context, hc *http.Client, cr Credentials) (string, error) {
	dom := map[string]string{"name": cr.Domain}
	body := map[string]any{"auth": map[string]any{
		"identity": map[string]any{"methods": []string{"password"},
			"password": map[string]any{"user": map[string]any{"name": cr.Username, "domain": dom, "password": cr.Password}}},
		"scope": map[string]any{"project": map[string]any{"name": cr.Project, "domain": dom}},
	}}
	b, _ := json.Marshal(body)
	u := strings.TrimRight(cr.AuthURL, "/") + "/auth/tokens"
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(b))
	if err != nil {
		return "", fmt.Errorf("login at %s: %w", cr.AuthURL, err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return "", fmt.Errorf("login at %s: %w", cr.AuthURL, err)
	}
	data, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		return "", fmt.Errorf("login at %s as %s: %w", cr.AuthURL, cr.Username, decodeError(resp.StatusCode, data))
	}
	tok := resp.Header.Get("X-Subject-Token")
	if tok == "" {
		return "", fmt.Errorf("login at %s: no X-Subject-Token in the answer", cr.AuthURL)
	}
	return tok, nil
}
