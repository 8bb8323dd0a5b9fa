// Package devsim is a Junos-like EVPN-VXLAN leaf switch for tests, benchmarks and the lab: NETCONF
// over SSH (golang.org/x/crypto/ssh) with a candidate and a committed configuration, locks,
// load-configuration in set form, commit (confirmed, check), get-configuration and injectable
// faults. Many devices run in one process, each on its own listener.
//
// What it simulates, and where it is simpler than a real device:
//   - Configuration is junosconf's: the statements vflink uses, checked against its schema, in set
//     form only (<load-configuration format="xml"> and subtree filters are refused as not
//     supported). action="merge" and action="replace" take set lines in <configuration-text>, and
//     replace (like override) replaces the whole candidate: Junos' replace only replaces the
//     elements tagged replace:, which set lines cannot express.
//   - A load is all or nothing: with one bad line nothing of it is applied (Junos may keep the good
//     lines). A delete of a statement that is not there is a warning, as on Junos.
//   - The candidate is shared (like "configure"); <lock> makes it exclusive to one session. A session
//     that ends while holding the lock releases it and its uncommitted changes are discarded. A load,
//     commit or discard while another session holds the lock is refused. <unlock> keeps the changes.
//     Junos also refuses a <lock> while the shared candidate has someone's uncommitted changes; the
//     simulator does not.
//   - Commit checks that every physical interface configured (anywhere, groups included) is one of
//     Options.Interfaces; Junos would accept any well-formed name.
//   - Confirmed commit, Junos style (not RFC 6241): a later commit by any session confirms it;
//     closing the session does not roll it back; when the timeout passes unconfirmed, the
//     configuration before it is committed again (recorded in the history as a rollback). A
//     confirmed commit after a confirmed commit confirms the first and arms its own rollback, to the
//     configuration before it. Timeouts are minutes times Options.ConfirmUnit.
//   - <get-configuration> defaults to database="committed" (Junos defaults to candidate: clients
//     should always say which).
//
// Faults (Device.SetFault) make a device refuse connections, fail or hang commits, or drop the
// connection after a confirmed commit, for testing a driver's error paths.
//
// The SSH server accepts password authentication, session channels only, and on them only the
// netconf subsystem (pty, shell, exec and other subsystems are refused). Framing is RFC 6242:
// end-of-message until both hellos are exchanged, chunked once both sides offered base:1.1; a
// framing error ends the session, malformed XML is answered with malformed-message. The
// interoperability target is scrapligo's netconf driver (tested here).
package devsim
