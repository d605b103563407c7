package testredis

// Production topologies: Sentinel (master, replica, three sentinels),
// Cluster (three masters) and TLS. Unlike Start these listen on loopback
// TCP ports, since that is how the servers find each other; the ports are
// picked free at start.

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// lookBin finds a Redis program. A missing one fails the test, never
// skips it: these tests stand for Sentinel and Cluster, and `make deps`
// installs what they need.
func lookBin(t testing.TB, name, pkg string) string {
	t.Helper()
	bin, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s not found on PATH; run `make deps` (apt-get install %s)", name, pkg)
	}
	return bin
}

// tempDir is a short private directory removed at cleanup (see Start for
// why not t.TempDir).
func tempDir(t testing.TB, prefix string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatalf("testredis: %v", err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(dir) })
	return dir
}

// portMu keeps concurrent pickers in one test binary from choosing the same
// port before either server has bound it.
var (
	portMu    sync.Mutex
	portTaken = map[int]bool{}
)

// freePort returns a loopback port that is free, and whose cluster bus port
// (port+10000) is free too.
func freePort(t testing.TB) int {
	t.Helper()
	portMu.Lock()
	defer portMu.Unlock()
	for range 200 {
		p := 20000 + mrand.IntN(30000)
		if portTaken[p] || portTaken[p+10000] {
			continue
		}
		if canBind(p) && canBind(p+10000) {
			portTaken[p], portTaken[p+10000] = true, true
			return p
		}
	}
	t.Fatal("testredis: no free loopback port")
	return 0
}

func canBind(p int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		return false
	}
	_ = ln.Close()
	return true
}

// proc is one redis-server or redis-sentinel process on a TCP port.
type proc struct {
	t    testing.TB
	bin  string
	args []string
	dir  string
	addr string
	tls  *tls.Config // nil: plain TCP

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
}

// logPath is where the process logs.
func (p *proc) logPath() string { return filepath.Join(p.dir, "redis.log") }

func (p *proc) start() {
	p.t.Helper()
	p.mu.Lock()
	defer p.mu.Unlock()
	cmd := exec.Command(p.bin, p.args...)
	cmd.Dir = p.dir
	setDeathSignal(cmd)
	if err := cmd.Start(); err != nil {
		p.t.Fatalf("testredis: start %s: %v", p.bin, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	p.cmd, p.exited = cmd, exited

	deadline := time.Now().Add(readyTimeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			p.cmd = nil
			log, _ := os.ReadFile(p.logPath())
			p.t.Fatalf("testredis: %s on %s exited: %v\nlog:\n%s", filepath.Base(p.bin), p.addr, err, log)
		default:
		}
		var r any
		if r, lastErr = p.do("PING"); lastErr == nil && r == "PONG" {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = cmd.Process.Kill()
	<-exited
	p.cmd = nil
	log, _ := os.ReadFile(p.logPath())
	p.t.Fatalf("testredis: %s on %s not ready: %v\nlog:\n%s", filepath.Base(p.bin), p.addr, lastErr, log)
}

func (p *proc) kill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cmd == nil {
		return
	}
	_ = p.cmd.Process.Kill()
	<-p.exited
	p.cmd, p.exited = nil, nil
}

func (p *proc) running() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd != nil
}

// do sends one command on a fresh connection and returns the decoded reply.
func (p *proc) do(args ...string) (any, error) {
	return Do(p.addr, p.tls, args...)
}

// Do sends one command to the server at addr (TLS when tc is not nil) on a
// fresh connection and returns its reply: string for simple and bulk
// strings, int64, []any, nil, or an error for a Redis error reply. It lets
// tests inspect servers without the client under test.
func Do(addr string, tc *tls.Config, args ...string) (any, error) {
	var c net.Conn
	var err error
	d := &net.Dialer{Timeout: time.Second}
	if tc != nil {
		c, err = tls.DialWithDialer(d, "tcp", addr, tc)
	} else {
		c, err = d.Dial("tcp", addr)
	}
	if err != nil {
		return nil, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	if _, err := c.Write([]byte(b.String())); err != nil {
		return nil, err
	}
	return readReply(bufio.NewReader(c))
}

// ReplyError is a Redis error reply.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

func readReply(r *bufio.Reader) (any, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	line = strings.TrimSuffix(line, "\r\n")
	if line == "" {
		return nil, errors.New("testredis: empty reply line")
	}
	switch body := line[1:]; line[0] {
	case '+':
		return body, nil
	case '-':
		return nil, ReplyError(body)
	case ':':
		return strconv.ParseInt(body, 10, 64)
	case '$':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		buf := make([]byte, n+2)
		if _, err := io.ReadFull(r, buf); err != nil {
			return nil, err
		}
		return string(buf[:n]), nil
	case '*':
		n, err := strconv.Atoi(body)
		if err != nil || n < 0 {
			return nil, err
		}
		out := make([]any, n)
		for i := range out {
			if out[i], err = readReply(r); err != nil {
				var re ReplyError
				if !errors.As(err, &re) {
					return nil, err
				}
				out[i] = re
			}
		}
		return out, nil
	}
	return nil, fmt.Errorf("testredis: unexpected reply %q", line)
}

// baseArgs are the redis-server flags every topology shares: loopback only,
// no persistence, a log in dir.
func baseArgs(port int, dir string) []string {
	return []string{
		"--port", strconv.Itoa(port),
		"--bind", "127.0.0.1",
		"--dir", dir,
		"--save", "",
		"--appendonly", "no",
		"--daemonize", "no",
		"--logfile", filepath.Join(dir, "redis.log"),
		"--loglevel", "notice",
	}
}

func newProc(t testing.TB, bin, dir string, port int, args []string) *proc {
	p := &proc{t: t, bin: bin, args: args, dir: dir, addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port))}
	t.Cleanup(p.kill)
	return p
}

// eventually polls fn every 50 ms until it returns nil or d passes.
func eventually(d time.Duration, fn func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := fn()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// ---- Sentinel ----

// SentinelMaster is the name the sentinels of StartSentinel monitor.
const SentinelMaster = "sesame"

// Sentinel timings: short so that a failover takes seconds.
const (
	downAfter       = 1000 * time.Millisecond
	failoverTimeout = 5000 * time.Millisecond
)

// Sentinel is a master, one replica and three sentinels (quorum 2).
type Sentinel struct {
	t         testing.TB
	servers   []*proc // the master and the replica, in start order
	sentinels []*proc
}

// StartSentinel starts a Sentinel deployment and waits until every
// sentinel sees the master, the replica and the two other sentinels.
func StartSentinel(t testing.TB) *Sentinel {
	t.Helper()
	server := lookBin(t, "redis-server", "redis-server")
	sentinel := lookBin(t, "redis-sentinel", "redis-sentinel")
	s := &Sentinel{t: t}
	var masterPort int
	for i := range 2 {
		dir := tempDir(t, "sesame-redis-node-")
		port := freePort(t)
		args := append(baseArgs(port, dir), "--repl-diskless-sync-delay", "0")
		if i == 0 {
			masterPort = port
		} else {
			args = append(args, "--replicaof", "127.0.0.1", strconv.Itoa(masterPort))
		}
		p := newProc(t, server, dir, port, args)
		p.start()
		s.servers = append(s.servers, p)
	}
	for range 3 {
		dir := tempDir(t, "sesame-sentinel-")
		port := freePort(t)
		conf := fmt.Sprintf(`port %d
bind 127.0.0.1
daemonize no
dir %s
logfile %s
sentinel monitor %s 127.0.0.1 %d 2
sentinel down-after-milliseconds %[4]s %d
sentinel failover-timeout %[4]s %d
sentinel parallel-syncs %[4]s 1
`, port, dir, filepath.Join(dir, "redis.log"), SentinelMaster, masterPort, downAfter.Milliseconds(), failoverTimeout.Milliseconds())
		confPath := filepath.Join(dir, "sentinel.conf")
		if err := os.WriteFile(confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		p := newProc(t, sentinel, dir, port, []string{confPath})
		p.start()
		s.sentinels = append(s.sentinels, p)
	}
	err := eventually(20*time.Second, func() error {
		for _, sp := range s.sentinels {
			m, err := sentinelMasterInfo(sp)
			if err != nil {
				return err
			}
			if m["num-other-sentinels"] != "2" || m["num-slaves"] != "1" || m["flags"] != "master" {
				return fmt.Errorf("sentinel %s sees %v", sp.addr, m)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatalf("testredis: sentinels did not settle: %v", err)
	}
	t.Logf("testredis: sentinel %s: master %s, replica %s, sentinels %v", SentinelMaster, s.servers[0].addr, s.servers[1].addr, s.Addrs())
	return s
}

func sentinelMasterInfo(sp *proc) (map[string]string, error) {
	r, err := sp.do("SENTINEL", "MASTER", SentinelMaster)
	if err != nil {
		return nil, err
	}
	flat, _ := r.([]any)
	m := map[string]string{}
	for i := 0; i+1 < len(flat); i += 2 {
		k, _ := flat[i].(string)
		v, _ := flat[i+1].(string)
		m[k] = v
	}
	return m, nil
}

// Addrs returns the sentinels' host:port addresses.
func (s *Sentinel) Addrs() []string {
	var out []string
	for _, p := range s.sentinels {
		out = append(out, p.addr)
	}
	return out
}

// MasterName returns the monitored master's name.
func (s *Sentinel) MasterName() string { return SentinelMaster }

// Master returns the master address the first sentinel that answers
// reports.
func (s *Sentinel) Master() string {
	s.t.Helper()
	for _, sp := range s.sentinels {
		if a, err := masterAddr(sp); err == nil {
			return a
		}
	}
	s.t.Fatal("testredis: no sentinel answers")
	return ""
}

func masterAddr(sp *proc) (string, error) {
	r, err := sp.do("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SentinelMaster)
	if err != nil {
		return "", err
	}
	hp, _ := r.([]any)
	if len(hp) != 2 {
		return "", fmt.Errorf("get-master-addr-by-name: %v", r)
	}
	h, _ := hp[0].(string)
	p, _ := hp[1].(string)
	return net.JoinHostPort(h, p), nil
}

// Failover asks a sentinel for a failover (SENTINEL FAILOVER), as an
// operator does before maintenance, and returns the old master's address
// at once; use WaitNewMaster to wait for the end.
func (s *Sentinel) Failover() string {
	s.t.Helper()
	old := s.Master()
	if _, err := s.sentinels[0].do("SENTINEL", "FAILOVER", SentinelMaster); err != nil {
		s.t.Fatalf("testredis: SENTINEL FAILOVER: %v", err)
	}
	return old
}

// KillMaster kills the current master (SIGKILL), as a crash would, and
// returns its address. The sentinels notice after down-after-milliseconds
// and promote the replica.
func (s *Sentinel) KillMaster() string {
	s.t.Helper()
	old := s.Master()
	for _, p := range s.servers {
		if p.addr == old {
			p.kill()
			return old
		}
	}
	s.t.Fatalf("testredis: master %s is none of ours", old)
	return ""
}

// WaitNewMaster waits until every running sentinel names the same master,
// other than old, and that server says it is a master; it returns the new
// master's address.
func (s *Sentinel) WaitNewMaster(old string) string {
	s.t.Helper()
	var now string
	// 75 s: a sentinel whose timer was held up for 2 s (a starved CPU, a
	// frozen container) enters TILT mode and sits out failovers for 30 s.
	err := eventually(75*time.Second, func() error {
		seen := map[string]bool{}
		for _, sp := range s.sentinels {
			if !sp.running() {
				continue
			}
			a, err := masterAddr(sp)
			if err != nil {
				return err
			}
			seen[a] = true
			now = a
		}
		if len(seen) != 1 || now == old {
			return fmt.Errorf("sentinels name %v (old master %s)", slices.Collect(maps.Keys(seen)), old)
		}
		r, err := Do(now, nil, "ROLE")
		if err != nil {
			return err
		}
		if role, _ := r.([]any); len(role) == 0 || role[0] != "master" {
			return fmt.Errorf("%s has role %v", now, r)
		}
		return nil
	})
	if err != nil {
		var logs strings.Builder
		for _, p := range append(append([]*proc(nil), s.servers...), s.sentinels...) {
			b, _ := os.ReadFile(p.logPath())
			fmt.Fprintf(&logs, "---- %s %s\n%s", filepath.Base(p.bin), p.addr, b)
		}
		s.t.Fatalf("testredis: no new master: %v\n%s", err, logs.String())
	}
	return now
}

// Tilted reports whether a sentinel entered TILT mode (its timer was held
// up for over 2 s, so it distrusted its clock and paused failovers for
// 30 s): a failover measured then says more about the machine than about
// Redis.
func (s *Sentinel) Tilted() bool {
	for _, p := range s.sentinels {
		if b, _ := os.ReadFile(p.logPath()); strings.Contains(string(b), "+tilt") {
			return true
		}
	}
	return false
}

// ---- Cluster ----

// Cluster is a Redis Cluster: three masters, and as many replicas per
// master as ClusterOptions asks.
type Cluster struct {
	t     testing.TB
	nodes []*proc
	// caFile is the CA of a TLS cluster's certificates ("" without TLS).
	caFile string
}

// ClusterOptions shape StartClusterWith's cluster.
type ClusterOptions struct {
	// Replicas per master (redis-cli --cluster-replicas): with one, a
	// master lost is replaced by its replica.
	Replicas int
	// NoFullCoverage sets cluster-require-full-coverage no: the slots of
	// the other masters keep answering while a master's slots are
	// uncovered. With the default (yes) the whole cluster refuses
	// commands (CLUSTERDOWN) once a master is seen failed.
	NoFullCoverage bool
	// TLS makes every node speak TLS only, clients and cluster bus alike
	// (tls-cluster yes), with certificates from a CA made for the test.
	TLS bool
}

// clusterNodeTimeout is cluster-node-timeout: how long a node may be
// unreachable before the others mark it failed.
const clusterNodeTimeout = 2000 * time.Millisecond

// StartCluster starts three cluster-enabled masters, joins them with
// redis-cli --cluster create and waits for cluster_state:ok everywhere.
func StartCluster(t testing.TB) *Cluster {
	t.Helper()
	return StartClusterWith(t, ClusterOptions{})
}

// StartClusterWith starts a cluster as opts say and waits until every
// node reports cluster_state:ok and sees every other node.
func StartClusterWith(t testing.TB, opts ClusterOptions) *Cluster {
	t.Helper()
	server := lookBin(t, "redis-server", "redis-server")
	cli := lookBin(t, "redis-cli", "redis-tools")
	c := &Cluster{t: t}
	var certFile, keyFile string
	var pool *x509.CertPool
	if opts.TLS {
		c.caFile, certFile, keyFile, pool = makeCerts(t, tempDir(t, "sesame-cluster-ca-"))
	}
	coverage := "yes"
	if opts.NoFullCoverage {
		coverage = "no"
	}
	for range 3 * (1 + opts.Replicas) {
		dir := tempDir(t, "sesame-cluster-")
		port := freePort(t)
		args := append(baseArgs(port, dir),
			"--cluster-enabled", "yes",
			"--cluster-config-file", filepath.Join(dir, "nodes.conf"),
			"--cluster-node-timeout", strconv.FormatInt(clusterNodeTimeout.Milliseconds(), 10),
			"--cluster-require-full-coverage", coverage,
			"--repl-diskless-sync-delay", "0",
		)
		if opts.TLS {
			args[1] = "0" // --port 0: no plain TCP
			args = append(args,
				"--tls-port", strconv.Itoa(port),
				"--tls-cluster", "yes",
				"--tls-replication", "yes",
				"--tls-cert-file", certFile,
				"--tls-key-file", keyFile,
				"--tls-ca-cert-file", c.caFile,
				"--tls-auth-clients", "no",
			)
		}
		p := newProc(t, server, dir, port, args)
		if opts.TLS {
			p.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
		}
		p.start()
		c.nodes = append(c.nodes, p)
	}
	args := append([]string{"--cluster", "create"}, c.Addrs()...)
	args = append(args, "--cluster-replicas", strconv.Itoa(opts.Replicas), "--cluster-yes")
	if opts.TLS {
		args = append(args, "--tls", "--cacert", c.caFile)
	}
	// redis-cli waits for ever for nodes that cannot join.
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, cli, args...).CombinedOutput(); err != nil {
		t.Fatalf("testredis: redis-cli %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	if err := c.waitState(20*time.Second, "ok", len(c.nodes)); err != nil {
		t.Fatalf("testredis: cluster not ok: %v", err)
	}
	t.Logf("testredis: cluster of %v (replicas per master %d, full coverage %s, TLS %v)", c.Addrs(), opts.Replicas, coverage, opts.TLS)
	return c
}

// clusterInfo returns one node's CLUSTER INFO fields.
func clusterInfo(p *proc) (map[string]string, error) {
	r, err := p.do("CLUSTER", "INFO")
	if err != nil {
		return nil, err
	}
	info, _ := r.(string)
	m := map[string]string{}
	for _, line := range strings.Split(info, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			m[k] = v
		}
	}
	return m, nil
}

// waitState waits until every running node reports cluster_state want
// and, when known > 0, knows that many nodes.
func (c *Cluster) waitState(d time.Duration, want string, known int) error {
	return eventually(d, func() error {
		for _, n := range c.nodes {
			if !n.running() {
				continue
			}
			m, err := clusterInfo(n)
			if err != nil {
				return err
			}
			if m["cluster_state"] != want {
				return fmt.Errorf("%s: cluster_state %s, want %s", n.addr, m["cluster_state"], want)
			}
			if known > 0 && m["cluster_known_nodes"] != strconv.Itoa(known) {
				return fmt.Errorf("%s: knows %s nodes, want %d", n.addr, m["cluster_known_nodes"], known)
			}
		}
		return nil
	})
}

// WaitState waits up to d until every running node reports
// cluster_state want ("ok" or "fail"), failing the test otherwise.
func (c *Cluster) WaitState(want string, d time.Duration) {
	c.t.Helper()
	if err := c.waitState(d, want, 0); err != nil {
		c.t.Fatalf("testredis: %v", err)
	}
}

// Masters returns the indexes of the running nodes that are masters
// owning slots.
func (c *Cluster) Masters() []int {
	c.t.Helper()
	var out []int
	for i, n := range c.nodes {
		if !n.running() {
			continue
		}
		r, err := n.do("ROLE")
		if err != nil {
			c.t.Fatalf("testredis: ROLE on %s: %v", n.addr, err)
		}
		if role, _ := r.([]any); len(role) > 0 && role[0] == "master" && owns(n) {
			out = append(out, i)
		}
	}
	return out
}

// owns reports whether the node serves slots (CLUSTER NODES, its
// "myself" line lists slot ranges).
func owns(n *proc) bool {
	r, err := n.do("CLUSTER", "NODES")
	if err != nil {
		return false
	}
	for _, line := range strings.Split(fmt.Sprint(r), "\n") {
		f := strings.Fields(line)
		if len(f) > 8 && strings.Contains(f[2], "myself") {
			return true
		}
	}
	return false
}

// RestartNode starts node i again after KillNode, with its nodes.conf
// (so it rejoins under its old id) and no data, and waits until every
// node reports cluster_state:ok.
func (c *Cluster) RestartNode(i int) {
	c.t.Helper()
	c.nodes[i].start()
	c.WaitState("ok", 30*time.Second)
}

// Addrs returns the nodes' host:port addresses.
func (c *Cluster) Addrs() []string {
	var out []string
	for _, p := range c.nodes {
		out = append(out, p.addr)
	}
	return out
}

// CAFile returns the PEM file of the CA of a TLS cluster's certificates.
func (c *Cluster) CAFile() string { return c.caFile }

// AddUser creates an ACL user with every right and password on every
// node, and switches the default user off, so that only AddUser's users
// get in. Call it last: the helpers that inspect the nodes (Keys,
// KeySlot, WaitState…) speak as the default user.
func (c *Cluster) AddUser(name, password string) {
	c.t.Helper()
	for _, n := range c.nodes {
		if _, err := n.do("ACL", "SETUSER", name, "on", ">"+password, "~*", "&*", "+@all"); err != nil {
			c.t.Fatalf("testredis: ACL SETUSER on %s: %v", n.addr, err)
		}
		if _, err := n.do("ACL", "SETUSER", "default", "off"); err != nil {
			c.t.Fatalf("testredis: ACL SETUSER default off on %s: %v", n.addr, err)
		}
	}
}

// KeySlot asks a running node for CLUSTER KEYSLOT key.
func (c *Cluster) KeySlot(key string) int64 {
	c.t.Helper()
	var r any
	err := errors.New("no node running")
	for _, p := range c.nodes {
		if p.running() {
			if r, err = p.do("CLUSTER", "KEYSLOT", key); err == nil {
				break
			}
		}
	}
	if err != nil {
		c.t.Fatalf("testredis: CLUSTER KEYSLOT: %v", err)
	}
	n, _ := r.(int64)
	return n
}

// Keys returns every key of every node (KEYS *: test data only).
func (c *Cluster) Keys() []string {
	c.t.Helper()
	var out []string
	for _, n := range c.nodes {
		if !n.running() {
			continue
		}
		r, err := n.do("KEYS", "*")
		if err != nil {
			c.t.Fatalf("testredis: KEYS on %s: %v", n.addr, err)
		}
		for _, k := range r.([]any) {
			out = append(out, k.(string))
		}
	}
	return out
}

// NodesWithKeys counts the running nodes that hold at least one key.
func (c *Cluster) NodesWithKeys() int {
	c.t.Helper()
	n := 0
	for _, p := range c.nodes {
		if !p.running() {
			continue
		}
		if r, err := p.do("DBSIZE"); err == nil && r.(int64) > 0 {
			n++
		}
	}
	return n
}

// KillNode kills node i (SIGKILL). Without replicas its slots stay
// uncovered: once the other masters mark it failed (after
// cluster-node-timeout) the cluster answers CLUSTERDOWN for them, and for
// every slot with full coverage required. With replicas, one of its
// replicas takes over.
func (c *Cluster) KillNode(i int) { c.nodes[i].kill() }

// WaitNodeFailed waits until every other running node flags node i as
// failed (the "fail" flag of CLUSTER NODES, agreed by a majority of
// masters, not the "fail?" a single node suspects), and returns when.
func (c *Cluster) WaitNodeFailed(i int, d time.Duration) time.Time {
	c.t.Helper()
	err := eventually(d, func() error {
		for j, p := range c.nodes {
			if j == i || !p.running() {
				continue
			}
			r, err := p.do("CLUSTER", "NODES")
			if err != nil {
				return err
			}
			flagged := false
			for _, line := range strings.Split(fmt.Sprint(r), "\n") {
				f := strings.Fields(line)
				if len(f) > 2 && strings.HasPrefix(f[1], c.nodes[i].addr+"@") {
					flagged = slices.Contains(strings.Split(f[2], ","), "fail")
				}
			}
			if !flagged {
				return fmt.Errorf("%s does not flag %s as failed yet", p.addr, c.nodes[i].addr)
			}
		}
		return nil
	})
	if err != nil {
		c.t.Fatalf("testredis: %v", err)
	}
	return time.Now()
}

// NodeHolding returns the index of the running master that holds key
// (EXISTS answers 1 there; other masters answer MOVED), or -1.
func (c *Cluster) NodeHolding(key string) int {
	for i, p := range c.nodes {
		if !p.running() {
			continue
		}
		if r, err := p.do("EXISTS", key); err == nil && r == int64(1) {
			return i
		}
	}
	return -1
}

// Addr returns node i's host:port.
func (c *Cluster) Addr(i int) string { return c.nodes[i].addr }

// SlotsOf returns how many slots node i serves, as the first other
// running node sees it (CLUSTER SHARDS is not in Redis 6.2; CLUSTER
// SLOTS is).
func (c *Cluster) SlotsOf(i int) int {
	c.t.Helper()
	for j, p := range c.nodes {
		if j == i || !p.running() {
			continue
		}
		r, err := p.do("CLUSTER", "SLOTS")
		if err != nil {
			continue
		}
		n := 0
		ranges, _ := r.([]any)
		for _, rg := range ranges {
			f, _ := rg.([]any)
			if len(f) < 3 {
				continue
			}
			lo, _ := f[0].(int64)
			hi, _ := f[1].(int64)
			master, _ := f[2].([]any)
			if len(master) >= 2 {
				host, _ := master[0].(string)
				port, _ := master[1].(int64)
				if net.JoinHostPort(host, strconv.FormatInt(port, 10)) == c.nodes[i].addr {
					n += int(hi - lo + 1)
				}
			}
		}
		return n
	}
	return 0
}

// ---- TLS ----

// TLSServer is a redis-server that speaks only TLS.
type TLSServer struct {
	p      *proc
	caFile string
}

// StartTLS starts a redis-server with TLS only (--port 0, --tls-port), its
// certificate issued for 127.0.0.1 by a CA made for the test.
func StartTLS(t testing.TB) *TLSServer {
	t.Helper()
	server := lookBin(t, "redis-server", "redis-server")
	dir := tempDir(t, "sesame-redis-tls-")
	caFile, certFile, keyFile, pool := makeCerts(t, dir)
	port := freePort(t)
	args := baseArgs(port, dir)
	args[1] = "0" // --port 0: no plain TCP
	args = append(args,
		"--tls-port", strconv.Itoa(port),
		"--tls-cert-file", certFile,
		"--tls-key-file", keyFile,
		"--tls-ca-cert-file", caFile,
		"--tls-auth-clients", "no",
	)
	p := newProc(t, server, dir, port, args)
	p.tls = &tls.Config{RootCAs: pool, ServerName: "127.0.0.1"}
	p.start()
	if _, err := Do(p.addr, nil, "PING"); err == nil {
		t.Fatal("testredis: the TLS server answers plain TCP")
	}
	return &TLSServer{p: p, caFile: caFile}
}

// URL returns rediss://127.0.0.1:port.
func (s *TLSServer) URL() string { return "rediss://" + s.p.addr }

// CAFile returns the PEM file of the CA that issued the server certificate.
func (s *TLSServer) CAFile() string { return s.caFile }

// TLSConfig returns a client TLS configuration trusting the CA.
func (s *TLSServer) TLSConfig() *tls.Config { return s.p.tls.Clone() }

// AddUser creates an ACL user with every right and password, and removes
// the default user's rights, so only AddUser's users get in.
func (s *TLSServer) AddUser(name, password string) {
	s.p.t.Helper()
	if _, err := s.p.do("ACL", "SETUSER", name, "on", ">"+password, "~*", "&*", "+@all"); err != nil {
		s.p.t.Fatalf("testredis: ACL SETUSER: %v", err)
	}
	if _, err := s.p.do("ACL", "SETUSER", "default", "off"); err != nil {
		s.p.t.Fatalf("testredis: ACL SETUSER default off: %v", err)
	}
}

// makeCerts writes ca.crt, server.crt and server.key into dir.
func makeCerts(t testing.TB, dir string) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("testredis: certificates: %v", err)
		}
	}
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	now := time.Now()
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "sesame test Redis CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	must(err)
	ca, err := x509.ParseCertificate(caDER)
	must(err)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		// Client auth too: cluster nodes present it to each other on
		// the cluster bus, and refuse the link without it.
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, ca, &srvKey.PublicKey, caKey)
	must(err)
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	must(err)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.crt"), filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")
	must(os.WriteFile(caFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}), 0o600))
	must(os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srvDER}), 0o600))
	must(os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600))
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, certFile, keyFile, pool
}
