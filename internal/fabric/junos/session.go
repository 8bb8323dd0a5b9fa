package junos

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/scrapli/scrapligo/driver/netconf"
	"github.com/scrapli/scrapligo/driver/opoptions"
	"github.com/scrapli/scrapligo/response"
)

var (
	// ErrConnectionLost is returned when the device's SSH connection ends during a call.
	ErrConnectionLost = errors.New("connection to the device lost")
	// ErrTimeout is returned when the device does not answer an RPC within Config.Timeout.
	ErrTimeout = errors.New("no reply from the device")
	// ErrSessionClosed is returned by a call whose session Close ended.
	ErrSessionClosed = errors.New("session closed")
)

// session is one NETCONF session: a scrapligo driver over an sshTransport.
type session struct {
	nc      *netconf.Driver
	tr      *sshTransport
	timeout time.Duration // per RPC

	closeOnce sync.Once
	done      chan struct{} // closed by close
}

// alive reports whether the session can take another RPC.
func (s *session) alive() bool {
	select {
	case <-s.done:
		return false
	case <-s.tr.lost:
		return false
	default:
		return true
	}
}

// close ends the session: the network connection first (so a hung RPC and the device's side end
// now, and the device discards the session's uncommitted changes and lock), then scrapligo's
// reader. Safe to call from any goroutine, more than once.
func (s *session) close() {
	s.closeOnce.Do(func() {
		close(s.done)
		s.tr.kill()
		_ = s.nc.Close()
	})
}

// rpcFunc sends one RPC with scrapligo; timeout bounds the wait for the reply.
type rpcFunc func(timeout time.Duration) (*response.NetconfResponse, error)

// raw is a Junos RPC given as XML.
func (s *session) raw(xml string) rpcFunc {
	return func(timeout time.Duration) (*response.NetconfResponse, error) {
		return s.nc.RPC(opoptions.WithFilter(xml), opoptions.WithTimeoutOps(timeout))
	}
}

// lock, unlock and discard are scrapligo's <lock>/<unlock> of the candidate and
// <discard-changes/>; they wait Channel.TimeoutOps (the driver's timeout), and call bounds them
// by the context.
func (s *session) lock(time.Duration) (*response.NetconfResponse, error) {
	return s.nc.Lock("candidate")
}

func (s *session) unlock(time.Duration) (*response.NetconfResponse, error) {
	return s.nc.Unlock("candidate")
}

func (s *session) discard(time.Duration) (*response.NetconfResponse, error) {
	return s.nc.Discard()
}

// call runs one RPC and parses the reply. It returns when the reply comes, the RPC times out,
// the connection is lost or ctx ends; in the last three cases the session is closed (scrapligo
// cannot abandon an RPC, and a half-done exchange leaves the session unusable anyway). An
// rpc-error of severity error in the reply is returned as the error (joined *RPCError); warnings
// come back in the reply.
func (s *session) call(ctx context.Context, f rpcFunc) (*reply, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	select {
	case <-s.done:
		return nil, ErrSessionClosed
	case <-s.tr.lost:
		s.close()
		return nil, ErrConnectionLost
	default:
	}
	wait := s.timeout
	if dl, ok := ctx.Deadline(); ok {
		wait = min(wait, time.Until(dl))
	}
	type result struct {
		r   *response.NetconfResponse
		err error
	}
	ch := make(chan result, 1)
	go func() {
		// scrapligo waits a little longer than this call, so the select below decides (and
		// words) a timeout; after it, scrapligo's own wait bounds how long this goroutine
		// lingers (it cannot be abandoned earlier).
		r, err := f(max(wait, 0) + time.Second)
		ch <- result{r, err}
	}()
	timer := time.NewTimer(s.timeout)
	defer timer.Stop()
	select {
	case <-timer.C:
		s.close()
		return nil, fmt.Errorf("%w within %s", ErrTimeout, s.timeout)
	case res := <-ch:
		if res.err != nil {
			select {
			case <-s.tr.lost:
				s.close()
				return nil, fmt.Errorf("%w: %v", ErrConnectionLost, res.err)
			default:
			}
			s.close()
			return nil, res.err
		}
		return readReply(res.r)
	case <-ctx.Done():
		s.close()
		return nil, ctx.Err()
	case <-s.tr.lost:
		s.close()
		return nil, ErrConnectionLost
	case <-s.done:
		return nil, ErrSessionClosed
	}
}

// readReply turns scrapligo's response into a reply, or the error the reply carries.
func readReply(r *response.NetconfResponse) (*reply, error) {
	if r == nil {
		return nil, errors.New("no reply")
	}
	if r.Result == "" && r.Failed != nil {
		return nil, fmt.Errorf("unreadable reply: %w", r.Failed)
	}
	rep, err := parseReply([]byte(r.Result))
	if err != nil {
		return nil, err
	}
	if err := rep.Err(); err != nil {
		return rep, err
	}
	return rep, nil
}
