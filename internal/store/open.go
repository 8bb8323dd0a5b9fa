package store

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.etcd.io/etcd/server/v3/etcdserver/api/v3client"
)

// Options choose and configure the etcd behind a Store.
type Options struct {
	// DataDir holds the embedded member (DataDir/etcd) and its listener ports.
	DataDir string
	// Endpoints, when set, select an external etcd cluster instead of the embedded member.
	Endpoints []string
	// TLS files for an external cluster (all optional).
	CertFile, KeyFile, CAFile string
	// Prefix of every key (default "/vflink/").
	Prefix string
	// Logger (default: discard).
	Logger *slog.Logger
	// StartTimeout bounds how long an embedded member may take to become ready (default 60 s).
	StartTimeout time.Duration
}

// Open connects to the configured etcd: an external cluster when Endpoints is set, else an embedded
// member in DataDir (created on first use, reopened with all its data afterwards).
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.Prefix == "" {
		o.Prefix = "/vflink/"
	}
	if !strings.HasSuffix(o.Prefix, "/") {
		o.Prefix += "/"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if len(o.Endpoints) > 0 {
		return openExternal(ctx, o)
	}
	return openEmbedded(ctx, o)
}

func openExternal(ctx context.Context, o Options) (*Store, error) {
	for _, ep := range o.Endpoints {
		u, err := url.Parse(ep)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return nil, fmt.Errorf("etcd endpoint %q is not a URL like http://127.0.0.1:2379 or https://etcd1:2379", ep)
		}
	}
	cfg := clientv3.Config{
		Endpoints:            o.Endpoints,
		DialTimeout:          5 * time.Second,
		DialKeepAliveTime:    5 * time.Second,
		DialKeepAliveTimeout: 3 * time.Second,
		Logger:               newEtcdLogger(o.Logger, new(atomic.Bool)),
		// the cluster's --max-request-bytes decides; a bulk create may be a few MB
		MaxCallSendMsgSize: EmbeddedMaxRequestBytes + 1<<20,
	}
	if o.CertFile != "" || o.KeyFile != "" || o.CAFile != "" {
		tc, err := tlsConfig(o)
		if err != nil {
			return nil, err
		}
		cfg.TLS = tc
	}
	c, err := clientv3.New(cfg)
	if err != nil {
		return nil, fmt.Errorf("connect to etcd %s: %w", strings.Join(o.Endpoints, ","), err)
	}
	s := newStore(c, o.Prefix, o.Logger, c.Close)
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := s.Status(pctx); err != nil {
		c.Close()
		return nil, fmt.Errorf("etcd %s does not answer: %w", strings.Join(o.Endpoints, ","), err)
	}
	o.Logger.Info("store: external etcd", "endpoints", strings.Join(o.Endpoints, ","))
	return s, nil
}

func tlsConfig(o Options) (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if o.CertFile != "" || o.KeyFile != "" {
		if o.CertFile == "" || o.KeyFile == "" {
			return nil, errors.New("etcd client TLS needs both --etcd-cert and --etcd-key")
		}
		cert, err := tls.LoadX509KeyPair(o.CertFile, o.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("load etcd client certificate %s: %w", o.CertFile, err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	if o.CAFile != "" {
		pem, err := os.ReadFile(o.CAFile)
		if err != nil {
			return nil, fmt.Errorf("read etcd CA %s: %w", o.CAFile, err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s holds no PEM certificate", o.CAFile)
		}
		tc.RootCAs = pool
	}
	return tc, nil
}

// memberPorts are the loopback ports of the embedded member, chosen on first start and kept in the
// data dir so the member's advertised URLs never change across restarts.
type memberPorts struct {
	Client int `json:"client"`
	Peer   int `json:"peer"`
}

func loadOrPickPorts(dir string) (memberPorts, error) {
	path := filepath.Join(dir, "etcd-ports.json")
	var p memberPorts
	if b, err := os.ReadFile(path); err == nil {
		if err := json.Unmarshal(b, &p); err != nil || p.Client == 0 || p.Peer == 0 {
			return p, fmt.Errorf("%s is damaged (want {\"client\": N, \"peer\": N}): %v", path, err)
		}
		return p, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return p, err
	}
	var err error
	if p.Client, err = freePort(); err != nil {
		return p, err
	}
	if p.Peer, err = freePort(); err != nil {
		return p, err
	}
	b, _ := json.Marshal(p)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return p, fmt.Errorf("record embedded etcd ports: %w", err)
	}
	return p, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("pick a loopback port for embedded etcd: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// The embedded member's transaction limits (etcd's defaults are 128 operations and 1.5 MiB).
const (
	EmbeddedMaxTxnOps       = 1 << 16
	EmbeddedMaxRequestBytes = 10 << 20
)

func openEmbedded(ctx context.Context, o Options) (*Store, error) {
	if o.DataDir == "" {
		return nil, errors.New("an embedded store needs a data dir (--data-dir)")
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return nil, fmt.Errorf("create data dir: %w", err)
	}
	ports, err := loadOrPickPorts(o.DataDir)
	if err != nil {
		return nil, err
	}
	cu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports.Client)}
	pu := url.URL{Scheme: "http", Host: fmt.Sprintf("127.0.0.1:%d", ports.Peer)}
	cfg := embed.NewConfig()
	cfg.Name = "vflink"
	cfg.Dir = filepath.Join(o.DataDir, "etcd")
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{cu}, []url.URL{cu}
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{pu}, []url.URL{pu}
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	var closing atomic.Bool
	cfg.ZapLoggerBuilder = embed.NewZapLoggerBuilder(newEtcdLogger(o.Logger, &closing))
	cfg.AutoCompactionMode = embed.CompactorModePeriodic
	cfg.AutoCompactionRetention = "1h"
	// a native bulk create is one transaction: 1000 ports are ~6000 compares and writes, ~1.5 MB
	cfg.MaxTxnOps = EmbeddedMaxTxnOps
	cfg.MaxRequestBytes = EmbeddedMaxRequestBytes
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, fmt.Errorf("start embedded etcd in %s: %w", cfg.Dir, err)
	}
	timeout := o.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	select {
	case <-e.Server.ReadyNotify():
	case err := <-e.Err():
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s: %w", cfg.Dir, err)
	case <-time.After(timeout):
		e.Close()
		return nil, fmt.Errorf("embedded etcd in %s not ready after %s", cfg.Dir, timeout)
	case <-ctx.Done():
		e.Close()
		return nil, ctx.Err()
	}
	c := v3client.New(e.Server)
	o.Logger.Info("store: embedded etcd", "dir", cfg.Dir, "client_url", cu.String())
	closeFn := func() error {
		closing.Store(true)
		err := c.Close()
		e.Close()
		return err
	}
	return newStore(c, o.Prefix, o.Logger, closeFn), nil
}
